"""Erasure on request: DELETE /users/me and DELETE /users/{id} anonymise at once and keep the orders."""

from __future__ import annotations

from tests.helpers import bearer
from tests.identity.conftest import auth, login
from tests.orders.conftest import place

ME = "/api/v1/users/me"


def test_deleting_oneself_erases_the_account_at_once_and_keeps_the_order(client, app, user_of, make_variant, sql,
                                                                          caplog):
    customer = user_of(email="ada@example.com", first_name="Ada")
    tokens = login(client, "ada@example.com").json
    headers = auth(tokens)
    order = place(client, headers, make_variant())
    assert order.status_code == 201, order.json
    assert client.post(f"{ME}/addresses", headers=headers, json={
        "firstName": "Ada", "lastName": "Lovelace", "line1": "12 Analytical Row", "city": "London",
        "postalCode": "N1 9GU", "country": "GB"}).status_code == 201

    erased = client.delete(ME, headers=headers)

    assert (erased.status_code, erased.get_data()) == (204, b"")
    logged = [r for r in caplog.records if r.getMessage() == "user erased"]
    assert [(r.user_id, r.reason) for r in logged] == [(str(customer.id), "request")]  # for replay after a restore
    assert client.get(ME, headers=headers).status_code == 401  # the access token in hand stops working
    assert client.post("/api/v1/auth/refresh", json={"refreshToken": tokens["refreshToken"]}).status_code == 401
    assert login(client, "ada@example.com").status_code == 401
    assert sql("SELECT email FROM users WHERE id = :id", id=customer.id) == [
        (f"erased-{customer.id.hex}@erased.invalid",)]
    assert sql("SELECT count(*) FROM addresses WHERE user_id = :id", id=customer.id) == [(0,)]
    staff = user_of("staff")
    kept = client.get(f"/api/v1/orders/{order.json['id']}", headers=bearer(app, staff))
    assert kept.status_code == 200 and kept.json["shippingAddress"]["firstName"] == "Ada"
    assert sql("SELECT details->>'reason' FROM security_events WHERE kind = 'user_erased' "
               "AND subject_user_id = :id", id=customer.id) == [("request",)]


def test_an_admin_erases_anyone_with_mfa_only(client, app, user_of, sql):
    target, other, admin = user_of(), user_of(), user_of("admin")
    path = f"/api/v1/users/{target.id}"

    without_mfa = client.delete(path, headers=bearer(app, admin, mfa=False))
    assert without_mfa.status_code == 403 and "MFA" in without_mfa.json["message"]
    assert client.delete(path, headers=bearer(app, other)).status_code == 404  # not one's own: not there
    assert sql("SELECT count(*) FROM users WHERE email LIKE 'erased-%'") == [(0,)]

    assert client.delete(path, headers=bearer(app, admin)).status_code == 204
    assert sql("SELECT email LIKE 'erased-%' FROM users WHERE id = :id", id=target.id) == [(True,)]
    again = client.delete(path, headers=bearer(app, admin))
    assert again.status_code == 404 and again.json["code"] == 404


def test_super_admins_are_erased_only_by_their_peers_and_never_the_last(client, app, user_of):
    top, admin = user_of("super_admin"), user_of("admin")
    assert client.delete(f"/api/v1/users/{top.id}", headers=bearer(app, admin)).status_code == 403
    last = client.delete(ME, headers=bearer(app, top))
    assert last.status_code == 409 and last.json["errors"] == {"userId": ["last super admin"]}
    peer = user_of("super_admin")
    assert client.delete(f"/api/v1/users/{top.id}", headers=bearer(app, peer)).status_code == 204


def test_a_guest_is_asked_to_sign_in(client):
    answer = client.delete(ME)
    assert answer.status_code == 401 and answer.json["code"] == 401


def test_the_openapi_document_shows_both_erasures_and_their_answers(client):
    paths = client.get("/api/openapi.json").json["paths"]
    assert {"204", "401", "403", "409"} <= set(paths["/api/v1/users/me"]["delete"]["responses"])
    assert {"204", "401", "403", "404", "409"} <= set(paths["/api/v1/users/{user_id}"]["delete"]["responses"])
