"""Profiles, addresses (object-level checks), user administration, settings and the security log."""

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import text

from models.users.tables import User
from tests.helpers import bearer
from tests.identity.conftest import events, rows
from web.auth.guard import requires
from web.extensions import db as app_db

ADDRESS = {"firstName": "Ada", "lastName": "Lovelace", "line1": "12 St James's Square", "city": "London",
           "postalCode": "SW1Y 4JH", "country": "GB", "phone": "+44 20 7946 0000"}


def test_own_account_by_id_needs_no_step_up(app, client, user_of):
    admin = user_of("admin")
    headers = bearer(app, admin, mfa=False)
    assert client.get(f"/api/v1/users/{admin.id}", headers=headers).status_code == 200
    assert client.patch(f"/api/v1/users/{admin.id}", headers=headers, json={"firstName": "Al"}).status_code == 200
    assert client.patch(f"/api/v1/users/{admin.id}", headers=headers, json={"isVerified": False}).status_code == 403


def test_an_api_key_has_no_own_account(app, client, user_of):
    created = client.post("/api/v1/api-keys", headers=bearer(app, user_of("admin")),
                          json={"name": "k", "scopes": ["users:view_all", "users:update_all"]}).json
    key = {"X-API-Key": created["key"]}
    for method, path, body in [("GET", "/api/v1/users/me", None), ("PATCH", "/api/v1/users/me", {"firstName": "K"}),
                               ("POST", "/api/v1/users/me/addresses", ADDRESS),
                               ("GET", "/api/v1/users/me/addresses", None)]:
        response = client.open(path, method=method, headers=key, json=body)
        assert response.status_code == 403 and "no person" in response.json["message"], (method, path)


def test_profile_read_and_change(app, client, user_of):
    user = user_of(first_name="Ada")
    headers = bearer(app, user)
    assert client.get("/api/v1/users/me", headers=headers).json["firstName"] == "Ada"
    changed = client.patch("/api/v1/users/me", headers=headers, json={"firstName": " Augusta "})
    assert changed.status_code == 200 and changed.json["firstName"] == "Augusta"
    assert client.patch("/api/v1/users/me", headers=headers, json={"role": "admin"}).status_code == 422


def test_address_crud(app, client, user_of):
    headers = bearer(app, user_of())
    created = client.post("/api/v1/users/me/addresses", headers=headers, json={**ADDRESS, "isDefault": True})
    assert created.status_code == 201, created.json
    address_id = created.json["id"]
    assert created.json["line1"] == ADDRESS["line1"] and created.json["isDefault"] is True
    second = client.post("/api/v1/users/me/addresses", headers=headers, json={**ADDRESS, "isDefault": True}).json
    listed = client.get("/api/v1/users/me/addresses", headers=headers).json["items"]
    assert [(a["id"], a["isDefault"]) for a in listed] == [(address_id, False), (second["id"], True)]
    patched = client.patch(f"/api/v1/users/me/addresses/{address_id}", headers=headers, json={"city": "Oxford"})
    assert patched.status_code == 200 and patched.json["city"] == "Oxford"
    assert client.delete(f"/api/v1/users/me/addresses/{address_id}", headers=headers).status_code == 204
    assert client.get(f"/api/v1/users/me/addresses/{address_id}", headers=headers).status_code == 404


def test_bad_addresses_name_their_fields(app, client, user_of):
    response = client.post("/api/v1/users/me/addresses", headers=bearer(app, user_of()),
                           json={**ADDRESS, "country": "United Kingdom", "line1": ""})
    assert response.status_code == 422
    assert set(response.json["errors"]["json"]) == {"country", "line1"}


def test_another_customers_user_and_addresses_are_404(app, client, user_of):
    owner, intruder = user_of(), user_of()
    address_id = client.post("/api/v1/users/me/addresses", headers=bearer(app, owner), json=ADDRESS).json["id"]
    headers = bearer(app, intruder)
    url = f"/api/v1/users/me/addresses/{address_id}"
    assert client.get(url, headers=headers).status_code == 404
    assert client.patch(url, headers=headers, json={"city": "Paris"}).status_code == 404
    assert client.delete(url, headers=headers).status_code == 404
    assert client.get(f"/api/v1/users/{owner.id}", headers=headers).status_code == 404
    assert client.patch(f"/api/v1/users/{owner.id}", headers=headers, json={"firstName": "X"}).status_code == 404
    assert client.get(url, headers=bearer(app, owner)).json["city"] == "London"
    assert client.get(f"/api/v1/users/{owner.id}", headers=bearer(app, owner)).status_code == 200


def test_admins_list_users_page_by_page(app, client, user_of):
    admin = user_of("admin")
    for _ in range(4):
        user_of()
    headers = bearer(app, admin)
    first = client.get("/api/v1/users?limit=3", headers=headers).json
    second = client.get(f"/api/v1/users?limit=3&cursor={first['nextCursor']}", headers=headers).json
    assert len(first["items"]) == 3 and len(second["items"]) == 2 and second["nextCursor"] is None
    assert len({u["id"] for u in first["items"] + second["items"]}) == 5
    customers = client.get("/api/v1/users?role=customer", headers=headers).json["items"]
    assert len(customers) == 4
    assert client.get("/api/v1/users?cursor=bogus", headers=headers).status_code == 400


def test_only_a_super_admin_makes_or_touches_a_super_admin(app, client, user_of):
    admin, top, customer = user_of("admin"), user_of("super_admin"), user_of()
    headers = bearer(app, admin)
    assert client.patch(f"/api/v1/users/{customer.id}", headers=headers,
                        json={"role": "super_admin"}).status_code == 403
    assert client.patch(f"/api/v1/users/{top.id}", headers=headers, json={"lastName": "X"}).status_code == 403
    assert client.patch(f"/api/v1/users/{admin.id}", headers=headers, json={"role": "staff"}).status_code == 403
    promoted = client.patch(f"/api/v1/users/{customer.id}", headers=bearer(app, top), json={"role": "admin"})
    assert promoted.status_code == 200 and promoted.json["role"] == "admin"


def test_settings_view_and_update_are_logged(app, client, user_of, db):
    admin, top = user_of("admin"), user_of("super_admin")
    changed = client.patch("/api/v1/settings", headers=bearer(app, top),
                           json={"settings": {"store.name": "Shop", "orders.max_items": 50}})
    assert changed.status_code == 200
    assert changed.json["settings"] == {"orders.max_items": 50, "store.name": "Shop"}
    removed = client.patch("/api/v1/settings", headers=bearer(app, top), json={"settings": {"store.name": None}})
    assert removed.json["settings"] == {"orders.max_items": 50}
    assert client.get("/api/v1/settings", headers=bearer(app, admin)).json["settings"] == {"orders.max_items": 50}
    bad = client.patch("/api/v1/settings", headers=bearer(app, top), json={"settings": {"Bad Key": 1}})
    assert bad.status_code == 422
    logged = events(db, "settings_changed")
    assert [e.details["keys"] for e in logged] == [["orders.max_items", "store.name"], ["store.name"]]
    assert all(e.actor_user_id == top.id and e.ip == "127.0.0.1" for e in logged)
    assert rows(db, "SELECT template FROM email_messages") == [("security_alert",), ("security_alert",)]


def test_admins_read_the_security_log_newest_first(app, client, user_of):
    admin = user_of("admin")
    headers = bearer(app, admin)
    customer = user_of()
    for name in ("A", "B"):
        client.patch(f"/api/v1/users/{customer.id}", headers=headers, json={"firstName": name})
    client.post("/api/v1/auth/login", json={"email": "x@example.com", "password": "Wrong-passw0rd!"})
    page = client.get("/api/v1/security-events?limit=2", headers=headers).json
    assert [e["kind"] for e in page["items"]] == ["login_failed", "user_updated"] and page["nextCursor"]
    rest = client.get(f"/api/v1/security-events?cursor={page['nextCursor']}", headers=headers).json
    assert [e["kind"] for e in rest["items"]] == ["user_updated"] and rest["nextCursor"] is None
    assert rest["items"][0]["subjectUserId"] == str(customer.id)
    failed = client.get("/api/v1/security-events?kind=login_failed", headers=headers).json["items"]
    assert [e["details"]["email"] for e in failed] == ["x***@example.com"]


def test_every_admin_action_that_changes_something_is_logged_in_its_transaction(app, client, user_of, db):
    blp = Blueprint("admin_probe", __name__, url_prefix="/api/v1/admin-probe")

    @blp.route("")
    class Probe(MethodView):
        @requires("products:create")
        def post(self):
            with app_db().session() as session:
                session.execute(text("UPDATE users SET is_verified = true"))
                session.add(User(email="made@example.com", password_hash="x", first_name="M", last_name="M"))
            return {}

        @requires("products:create")
        def get(self):
            with app_db().session():
                pass
            return {}

    app.register_blueprint(blp)
    admin = user_of("admin")
    assert client.post("/api/v1/admin-probe", headers=bearer(app, admin)).status_code == 200
    assert client.get("/api/v1/admin-probe", headers=bearer(app, admin)).status_code == 200
    [(kind, actor, _, ip, details)] = events(db, "admin_action")
    assert (actor, ip, details) == (admin.id, "127.0.0.1",
                                   {"permission": "products:create", "request": "POST /api/v1/admin-probe"})
    assert rows(db, "SELECT count(*) FROM users WHERE email = 'made@example.com'") == [(1,)]
