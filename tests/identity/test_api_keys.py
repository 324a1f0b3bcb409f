"""API keys: shown once, stored hashed beside a visible prefix, scoped, revocable, with last use recorded."""

from models.users.key_access import KeyAccess
from tests.helpers import bearer
from tests.identity.conftest import events, rows


def create(client, headers, scopes=("users:view_all",), name="reporting"):
    response = client.post("/api/v1/api-keys", headers=headers, json={"name": name, "scopes": list(scopes)})
    assert response.status_code == 201, response.json
    return response.json


def test_a_key_is_shown_once_and_stored_only_hashed(app, client, user_of, db):
    headers = bearer(app, user_of("admin"))
    created = create(client, headers)
    assert created["key"].startswith(f"shk_{created['prefix']}_")
    [(prefix, key_hash)] = rows(db, "SELECT prefix, key_hash FROM api_keys")
    assert prefix == created["prefix"] and created["key"] not in key_hash and len(key_hash) == 64
    listed = client.get("/api/v1/api-keys", headers=headers).json["items"]
    assert [k["prefix"] for k in listed] == [prefix] and "key" not in listed[0]
    assert "key" not in client.get(f"/api/v1/api-keys/{created['id']}", headers=headers).json


def test_a_key_works_records_its_use_and_stops_when_revoked(app, client, user_of, db):
    admin = user_of("admin")
    headers = bearer(app, admin)
    created = create(client, headers)
    key = {"X-API-Key": created["key"]}
    assert client.get("/api/v1/users", headers=key).status_code == 200
    assert client.get("/api/v1/settings", headers=key).status_code == 403
    access = KeyAccess(app.extensions["shop"].redis)
    assert access.flush_usage(db.session) == 2
    used = client.get(f"/api/v1/api-keys/{created['id']}", headers=headers).json
    assert used["lastUsedAt"] is not None and used["useCount"] == 2
    [(_, _, _, ip, details)] = events(db, "api_key_used")
    assert ip is None and details == {"requests": 2, "ips": ["127.0.0.1"], "distinct_ips": 1,
                                      "last_used_at": details["last_used_at"]}
    assert client.delete(f"/api/v1/api-keys/{created['id']}", headers=headers).status_code == 204
    refused = client.get("/api/v1/users", headers=key)
    assert refused.status_code == 401
    assert [e.kind for e in events(db) if e.kind.startswith("api_key_") and e.kind != "api_key_used"] == \
        ["api_key_created", "api_key_revoked"]


def test_forged_keys_are_refused(app, client, user_of):
    created = create(client, bearer(app, user_of("admin")))
    forged = created["key"][:-3] + ("aaa" if not created["key"].endswith("aaa") else "bbb")
    for key in (forged, "shk_", "nonsense", f"shk_{created['prefix']}"):
        assert client.get("/api/v1/users", headers={"X-API-Key": key}).status_code == 401, key


def test_only_admins_with_mfa_manage_keys(app, client, user_of):
    assert client.post("/api/v1/api-keys", json={"name": "x", "scopes": ["products:view"]}).status_code == 401
    staff = bearer(app, user_of("staff"))
    assert client.post("/api/v1/api-keys", headers=staff,
                       json={"name": "x", "scopes": ["products:view"]}).status_code == 403
    no_mfa = bearer(app, user_of("admin"), mfa=False)
    assert client.get("/api/v1/api-keys", headers=no_mfa).status_code == 403


def test_unknown_scopes_are_422(app, client, user_of):
    response = client.post("/api/v1/api-keys", headers=bearer(app, user_of("admin")),
                           json={"name": "x", "scopes": ["rockets:launch"]})
    assert response.status_code == 422 and "scopes" in response.json["errors"]["json"]


def test_a_key_with_every_scope_gets_no_server_error_anywhere(app, client, user_of):
    from models.users.permissions import KEY_SCOPES

    top = user_of("super_admin")
    created = create(client, bearer(app, top), scopes=KEY_SCOPES)
    key = {"X-API-Key": created["key"]}
    other = user_of()
    calls = [("GET", "/api/v1/users/me", None), ("PATCH", "/api/v1/users/me", {"firstName": "K"}),
             ("GET", "/api/v1/users/me/permissions", None), ("GET", "/api/v1/users/me/addresses", None),
             ("GET", "/api/v1/users", None), ("GET", f"/api/v1/users/{other.id}", None),
             ("PATCH", f"/api/v1/users/{other.id}", {"role": "staff"}), ("GET", "/api/v1/settings", None),
             ("PATCH", "/api/v1/settings", {"settings": {"a": 1}}), ("GET", "/api/v1/security-events", None),
             ("GET", "/api/v1/api-keys", None), ("POST", "/api/v1/auth/logout", None),
             ("POST", "/api/v1/auth/mfa/totp", None)]
    statuses = {(method, path): client.open(path, method=method, headers=key, json=body).status_code
                for method, path, body in calls}
    assert all(status < 500 for status in statuses.values()), statuses
    assert statuses[("PATCH", f"/api/v1/users/{other.id}")] == 200
    assert statuses[("PATCH", "/api/v1/settings")] == 200
