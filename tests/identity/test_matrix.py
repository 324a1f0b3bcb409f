"""The whole permission matrix through HTTP: every permission × every role (with and without MFA) × API keys.

One probe endpoint per permission, guarded by `@requires(permission)` and
calling `authorize` again in its "domain" step, shows what the guard and
the domain check decide; then the real users and settings endpoints are
checked row by row.
"""

import uuid

import pytest
from sqlalchemy import text
from flask_smorest import Blueprint

from models.users.permissions import PERMISSIONS, authorize, needs_mfa
from tests.helpers import bearer
from tests.models.test_permissions import spec_rows
from web.auth.guard import current_actor, requires

ROLES = ["guest", "customer", "staff", "admin", "super_admin"]


@pytest.fixture
def probed(app):
    blp = Blueprint("probe", __name__, url_prefix="/api/v1/probe")
    for permission in PERMISSIONS:
        def view(permission=permission):
            authorize(current_actor(), permission)  # the domain's own check
            return {"ok": permission}
        view.__name__ = permission.replace(":", "_")
        blp.add_url_rule(f"/{permission}", view_func=requires(permission)(view), methods=["POST"])
    app.register_blueprint(blp)
    return app


@pytest.fixture
def people(app, user_of):
    return {role: user_of(role) for role in ROLES[1:]}


def expected(role, permission, mfa):
    allowed = dict(((p, r), ok) for p, r, ok in all_rows())[(permission, role)]
    if not allowed:
        return 401 if role == "guest" else 403
    return 403 if needs_mfa(permission) and not mfa else 200


def all_rows():
    """The spec's table (tests/models) plus the rows API.md adds, as (permission, role, allowed)."""
    yield from spec_rows()
    spec = {name for name, _, _ in spec_rows()}
    for name, roles in PERMISSIONS.items():
        if name not in spec:
            for role in ROLES:
                yield name, role, role in roles


def test_every_permission_for_every_role_with_and_without_mfa(probed, client, people):
    seen = 0
    for permission in PERMISSIONS:
        for role in ROLES:
            for mfa in (True, False):
                headers = {} if role == "guest" else bearer(probed, people[role], mfa=mfa)
                response = client.post(f"/api/v1/probe/{permission}", headers=headers)
                assert response.status_code == expected(role, permission, mfa), (permission, role, mfa)
                if response.status_code == 403 and role in PERMISSIONS[permission]:
                    assert "MFA is required" in response.json["message"]
                seen += 1
    assert seen == len(PERMISSIONS) * 10


def test_api_keys_hold_exactly_their_scopes(probed, client, people):
    created = client.post("/api/v1/api-keys", headers=bearer(probed, people["admin"]),
                          json={"name": "feed", "scopes": ["imports:create", "products:update"]})
    assert created.status_code == 201, created.json
    key = {"X-API-Key": created.json["key"]}
    for permission in PERMISSIONS:
        response = client.post(f"/api/v1/probe/{permission}", headers=key)
        assert response.status_code == (200 if permission in ("imports:create", "products:update") else 403), \
            permission


def test_a_key_cannot_get_more_than_its_creator_holds(client, app, people):
    response = client.post("/api/v1/api-keys", headers=bearer(app, people["admin"]),
                           json={"name": "too much", "scopes": ["settings:update"]})
    assert response.status_code == 403


ME_ROWS = [("GET", "/api/v1/users/me", "users:view_own"),
           ("PATCH", "/api/v1/users/me", "users:update_own"),
           ("GET", "/api/v1/users/me/addresses", "users:view_own"),
           ("GET", "/api/v1/users", "users:view_all"),
           ("GET", "/api/v1/settings", "settings:view"),
           ("PATCH", "/api/v1/settings", "settings:update"),
           ("GET", "/api/v1/security-events", "security_events:view"),
           ("GET", "/api/v1/api-keys", "api_keys:manage")]
BODIES = {"/api/v1/users/me": {"firstName": "Ada"}, "/api/v1/settings": {"settings": {"store.name": "Shop"}}}


@pytest.mark.parametrize(("method", "path", "permission"), ME_ROWS)
def test_the_real_endpoints_follow_the_table(app, client, people, method, path, permission):
    for role in ROLES:
        for mfa in (True, False):
            headers = {} if role == "guest" else bearer(app, people[role], mfa=mfa)
            json = BODIES.get(path) if method == "PATCH" else None
            response = client.open(path, method=method, headers=headers, json=json)
            assert response.status_code == expected(role, permission, mfa), (role, mfa, response.json)


def test_update_all_and_view_all_on_another_user(app, client, people, user_of):
    other = user_of()
    for role in ROLES:
        for mfa in (True, False):
            headers = {} if role == "guest" else bearer(app, people[role], mfa=mfa)
            got = client.get(f"/api/v1/users/{other.id}", headers=headers).status_code
            changed = client.patch(f"/api/v1/users/{other.id}", headers=headers, json={"lastName": "X"}).status_code
            if role == "guest":
                assert (got, changed) == (401, 401)
            elif role in ("customer", "staff"):
                assert (got, changed) == (404, 404)  # another's account is not even there for them
            else:
                assert (got, changed) == ((200, 200) if mfa else (403, 403)), (role, mfa)


def test_the_permissions_endpoint_lists_the_callers_pairs(app, client, people):
    assert client.get("/api/v1/users/me/permissions").json == {"role": "guest", "permissions": ["products:view"]}
    body = client.get("/api/v1/users/me/permissions", headers=bearer(app, people["staff"])).json
    assert body["role"] == "staff"
    assert set(body["permissions"]) == {name for name, roles in PERMISSIONS.items() if "staff" in roles}


def test_unknown_ids_are_404_for_admins(app, client, people):
    assert client.get(f"/api/v1/users/{uuid.uuid4()}", headers=bearer(app, people["admin"])).status_code == 404


def test_every_scope_an_api_key_can_hold_or_why_not(probed, client, people, db):
    """Scopes over one's own things need a person: refused at creation, and refused on use if ever stored."""
    from models.users.permissions import NEEDS_PERSON

    admin = bearer(probed, people["super_admin"])
    for scope in PERMISSIONS:
        created = client.post("/api/v1/api-keys", headers=admin, json={"name": scope, "scopes": [scope]})
        if scope in NEEDS_PERSON:
            assert created.status_code == 422, scope
            assert "scopes" in created.json["errors"]["json"], scope
            continue
        assert created.status_code == 201, (scope, created.json)
        key = {"X-API-Key": created.json["key"]}
        assert client.post(f"/api/v1/probe/{scope}", headers=key).status_code == 200, scope
    with db.session() as session:
        session.execute(text("UPDATE api_keys SET scopes = :all"), {"all": sorted(PERMISSIONS)})
    for scope in sorted(NEEDS_PERSON):
        response = client.post(f"/api/v1/probe/{scope}", headers=key)
        assert response.status_code == 403 and "no person" in response.json["message"], scope
