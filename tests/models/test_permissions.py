"""The permission table and the Actor checks that web and tasks share."""

import uuid

import pytest

from models.errors import Forbidden
from models.users.permissions import GUEST, PERMISSIONS, SYSTEM, Actor, authorize, needs_mfa, permissions_of

pytestmark = pytest.mark.pure

SPEC_TABLE = """
products:view        | x x x x x
products:create      | . . . x x
products:update      | . . x x x
products:delete      | . . . x x
orders:view_own      | . x x x x
orders:view_all      | . . x x x
orders:update        | . . x x x
users:view_own       | . x x x x
users:view_all       | . . . x x
users:update_own     | . x x x x
users:update_all     | . . . x x
settings:view        | . . . x x
settings:update      | . . . . x
"""
ROLES = ["guest", "customer", "staff", "admin", "super_admin"]


def spec_rows():
    for line in SPEC_TABLE.strip().splitlines():
        name, marks = (part.strip() for part in line.split("|"))
        for role, mark in zip(ROLES, marks.split(), strict=True):
            yield name, role, mark == "x"


@pytest.mark.parametrize(("permission", "role", "expected"), list(spec_rows()))
def test_the_table_is_the_specs(permission, role, expected):
    actor = Actor(role=role, user_id=None if role == "guest" else uuid.uuid4(), mfa=True)
    assert actor.can(permission) is expected


def test_administrative_actions_are_those_only_admins_hold():
    assert needs_mfa("products:create") and needs_mfa("settings:update") and needs_mfa("users:update_all")
    assert not needs_mfa("products:update") and not needs_mfa("orders:view_all")


def test_authorize_refuses_admin_actions_without_mfa():
    admin = Actor(role="admin", user_id=uuid.uuid4(), mfa=False)
    with pytest.raises(Forbidden, match="MFA is required"):
        authorize(admin, "products:create")
    authorize(Actor(role="admin", user_id=admin.user_id, mfa=True), "products:create")
    authorize(admin, "products:update")  # staff-level: no step-up


def test_api_keys_hold_only_their_scopes_and_skip_mfa():
    key = Actor(role="admin", api_key_id=uuid.uuid4(), scopes=frozenset({"imports:create"}))
    authorize(key, "imports:create")
    with pytest.raises(Forbidden):
        authorize(key, "products:view")


def test_guest_system_and_unknown_permissions():
    assert permissions_of("guest") == ["products:view"]
    assert all(SYSTEM.can(name) for name in PERMISSIONS)
    with pytest.raises(KeyError):
        GUEST.can("rockets:launch")
