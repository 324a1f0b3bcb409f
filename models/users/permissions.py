"""Who may do what: the spec's "Role Permissions" table, written once, as data.

Both layers read it: the web guard (`web.auth.guard.requires`) refuses a
request before it reaches a domain action, and the domain actions that web
and tasks share call `authorize(actor, ...)` again. A permission that only
Admin and Super Admin hold is an *administrative action*: it also needs an
access token that records MFA (see `needs_mfa`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from models.errors import Forbidden
from models.users.tables import Role

G, C, S, A, SA = Role.GUEST, Role.CUSTOMER, Role.STAFF, Role.ADMIN, Role.SUPER_ADMIN
STAFF_UP = frozenset({S, A, SA})
ADMINS = frozenset({A, SA})

# resource:action -> the roles allowed. The first block is the spec's table;
# the second holds what API.md's "who" column adds for resources the table
# does not name.
PERMISSIONS: dict[str, frozenset[Role]] = {
    "products:view": frozenset({G, C, S, A, SA}),
    "products:create": ADMINS,
    "products:update": STAFF_UP,
    "products:delete": ADMINS,
    "orders:view_own": frozenset({C, S, A, SA}),
    "orders:view_all": STAFF_UP,
    "orders:update": STAFF_UP,
    "users:view_own": frozenset({C, S, A, SA}),
    "users:view_all": ADMINS,
    "users:update_own": frozenset({C, S, A, SA}),
    "users:update_all": ADMINS,
    "settings:view": ADMINS,
    "settings:update": frozenset({SA}),

    "orders:create": frozenset({C, S, A, SA}),
    "imports:create": ADMINS,
    "imports:view": ADMINS,
    "exports:create": ADMINS,
    "exports:view": ADMINS,
    "api_keys:manage": ADMINS,
    "security_events:view": ADMINS,
    # Erasure (API.md's DELETE /users/me and /users/{id}): one's own account, or any (an administrative action).
    "users:erase_own": frozenset({C, S, A, SA}),
    "users:erase_all": ADMINS,
    "dead_letters:view": ADMINS,
    "dead_letters:manage": ADMINS,
}


# Permissions over "my own" things: they need a person, so an API key (which acts for
# nobody) can never hold them (docs/identity.md, "API keys").
NEEDS_PERSON = frozenset({"orders:view_own", "orders:create", "users:view_own", "users:update_own"})
KEY_SCOPES = [name for name in PERMISSIONS if name not in NEEDS_PERSON]


def needs_mfa(permission: str) -> bool:
    """An administrative action: only Admin and Super Admin hold it."""
    return PERMISSIONS[permission] <= ADMINS


def allowed(role: Role | str, permission: str) -> bool:
    return Role(role) in PERMISSIONS[permission]


def permissions_of(role: Role | str) -> list[str]:
    """Every `resource:action` pair `role` holds, in table order."""
    return [name for name, roles in PERMISSIONS.items() if Role(role) in roles]


@dataclass(frozen=True)
class Actor:
    """Who is asking: a signed-in user, an API key, a guest, or the system itself."""

    role: Role = Role.GUEST
    user_id: uuid.UUID | None = None
    mfa: bool = False
    api_key_id: uuid.UUID | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)  # an API key holds only these
    ip: str | None = None
    system: bool = False

    def can(self, permission: str) -> bool:
        """Whether this actor holds `permission` (MFA aside)."""
        if permission not in PERMISSIONS:
            raise KeyError(f"unknown permission {permission!r}")
        if self.system:
            return True
        if self.api_key_id is not None:
            return permission in self.scopes and permission not in NEEDS_PERSON
        return allowed(self.role, permission)

    def mfa_satisfied(self, permission: str) -> bool:
        """Administrative actions need a token that records MFA; keys and the system are exempt."""
        return not needs_mfa(permission) or self.mfa or self.system or self.api_key_id is not None


GUEST = Actor()
SYSTEM = Actor(role=Role.SUPER_ADMIN, system=True)


def authorize(actor: Actor, permission: str) -> None:
    """Raise Forbidden unless `actor` may do `permission` now."""
    if not actor.can(permission):
        raise Forbidden(f"not allowed: {permission}")
    if not actor.mfa_satisfied(permission):
        raise Forbidden("MFA is required for this administrative action", {"mfa": ["required"]})
