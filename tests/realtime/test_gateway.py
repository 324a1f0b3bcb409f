"""The WebSocket gateway against the running stack: a real worker, Redis pub/sub, the gateway process."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import redis

from tests.helpers import PASSWORD, bearer, make_user, wait_for
from tests.orders.conftest import ORDERS, place, status_of


def pay(client, headers, order_id):
    response = client.post(f"{ORDERS}/{order_id}/pay", json={"paymentMethod": "sandbox_success"}, headers=headers)
    assert response.status_code == 202, response.json


def order_events_for(sock, order_id) -> list[dict]:
    return [m for m in sock.seen if m["type"] == "order.event" and m["orderId"] == order_id]


def test_owner_receives_status_changes_and_tracking_and_nobody_else_does(order_worker, app, client, people,
                                                                          make_variant, sockets):
    (_, customer), (_, other), (_, staff) = people["customer"], people["customer_other"], people["staff"]
    mine, theirs = sockets(), sockets()
    assert mine.auth(customer)["replayed"] == 0
    theirs.auth(other)
    variant = make_variant(stock=5)

    order_id = place(client, customer, variant).json["id"]
    created = mine.until(lambda m: m.get("kind") == "created")
    assert created["orderId"] == order_id and created["toStatus"] == "pending" and created["createdAt"]
    pay(client, customer, order_id)
    paid = mine.until(lambda m: m.get("toStatus") == "processing")
    assert paid["fromStatus"] == "pending" and paid["orderId"] == order_id  # moved by the worker

    assert client.post(f"{ORDERS}/{order_id}/shipments", json={"service": "ground"}, headers=staff).status_code == 202
    shipped = mine.until(lambda m: m.get("toStatus") == "shipped")
    assert shipped["data"]["trackingNumber"] and shipped["data"]["carrier"] == "sandbox"
    ids = [m["id"] for m in order_events_for(mine, order_id)]
    assert ids == sorted(ids) and len(ids) == len(set(ids))

    # B's own order reaches B after all of A's: by then any leak of A's events would have arrived too.
    other_order = place(client, other, variant).json["id"]
    theirs.until(lambda m: m.get("orderId") == other_order)
    assert {m["orderId"] for m in theirs.seen if m["type"] == "order.event"} == {other_order}


def test_reconnecting_with_the_last_event_id_replays_what_was_missed(order_worker, app, client, people,
                                                                     make_variant, sockets):
    _, customer = people["customer"]
    first = sockets()
    first.auth(customer)
    order_id = place(client, customer, make_variant()).json["id"]
    last_seen = first.until(lambda m: m.get("kind") == "created")["id"]
    first.close()

    pay(client, customer, order_id)  # while disconnected: payment requested, then paid by the worker
    wait_for(lambda: status_of(app, order_id) == "processing", 15, message="the order paid")
    again = sockets()
    ready = again.auth(customer, last_event_id=last_seen)
    replayed = order_events_for(again, order_id)
    assert ready["replayed"] == len(replayed) >= 2
    assert replayed[0]["kind"] == "payment.requested" and replayed[-1]["toStatus"] == "processing"
    assert all(m["id"] > last_seen for m in replayed)

    everything = sockets()
    assert everything.auth(customer, last_event_id=0)["replayed"] == len(replayed) + 1


def test_a_revoked_token_closes_the_open_connection(app, client, sockets):
    with app.extensions["shop"].db.session() as session:
        user = make_user(session, "customer")
    tokens = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}).json
    sock = sockets()
    sock.auth(tokens["accessToken"])
    headers = {"Authorization": f"Bearer {tokens['accessToken']}"}
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert sock.closed_with() == (4003, "token revoked")
    refused = sockets()
    refused.ws.send(json.dumps({"type": "auth", "token": tokens["accessToken"]}))
    assert refused.closed_with() == (4003, "token revoked")


def test_an_expired_token_closes_the_connection_when_it_expires(app, people, sockets):
    from flask_jwt_extended import create_access_token

    user, _ = people["customer"]
    with app.app_context():
        token = create_access_token(identity=str(user.id), expires_delta=timedelta(seconds=1),
                                    additional_claims={"role": "customer", "mfa": False, "sid": str(uuid.uuid4())})
    sock = sockets()
    sock.auth(token)
    assert sock.closed_with() == (4002, "token expired")
    late = sockets()
    late.ws.send(json.dumps({"type": "auth", "token": token}))
    assert late.closed_with() == (4002, "token expired")


def test_authentication_comes_first_and_must_be_valid(gateway, people, sockets):
    _, customer = people["customer"]
    silent = sockets()  # says nothing within WS_AUTH_TIMEOUT
    assert silent.closed_with()[0] == 4001
    forged = sockets()
    forged.ws.send(json.dumps({"type": "auth", "token": "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"}))
    assert forged.closed_with() == (4001, "invalid token")
    in_url = sockets(query="?token=" + customer["Authorization"].removeprefix("Bearer "))
    assert in_url.closed_with()[0] == 4001  # a token in the URL is never read


def test_per_user_connection_limit_and_heartbeat(people, sockets):
    _, customer = people["customer"]
    kept = [sockets(), sockets()]
    for sock in kept:
        sock.auth(customer)
    extra = sockets()
    extra.ws.send(json.dumps({"type": "auth", "token": customer["Authorization"][7:]}))
    assert extra.closed_with() == (4008, "at most 2 connections per user")
    kept[0].ws.send(json.dumps({"type": "ping"}))
    assert kept[0].until(lambda m: m["type"] == "pong")
    kept[1].ws.ping().wait(5)  # protocol-level ping answered too


def test_a_slow_consumer_is_closed_with_its_own_code(settings, people, sockets):
    user, customer = people["customer"]
    slow = sockets(max_queue=1)  # the client stops reading after one message: TCP fills up behind it
    slow.auth(customer)
    publisher = redis.Redis.from_url(settings.REDIS_URL)
    body = "x" * 20000
    for n in range(2000):
        publisher.publish("realtime:orders", json.dumps({"userId": str(user.id),
                                                         "event": {"type": "order.event", "id": n, "pad": body}}))
    assert slow.closed_with(timeout=20) == (4009, "slow consumer: too many messages waiting")


def test_admins_receive_import_progress_and_customers_do_not(app, settings, people, sockets):
    from models.imports.tables import ImportJob

    db = app.extensions["shop"].db
    with db.session() as session:
        admin = make_user(session, "admin")
    watcher, customer = sockets(), sockets()
    assert watcher.auth(bearer(app, admin))["imports"] is True
    assert customer.auth(people["customer"][1])["imports"] is False
    with db.session() as session:
        job = ImportJob(id=uuid.uuid4(), inbox="upload", source_key="k", filename="feed.csv")
        session.add(job)
    with db.session() as session:
        session.get(ImportJob, job.id).rows_imported = 500
    progress = watcher.until(lambda m: m["type"] == "import.progress" and m.get("rowsImported") == 500)
    assert progress["jobId"] == str(job.id) and progress["filename"] == "feed.csv"
    customer.ws.send(json.dumps({"type": "ping"}))
    customer.until(lambda m: m["type"] == "pong")
    assert not [m for m in customer.seen if m["type"] == "import.progress"]


def test_health_check_answers_plain_http_and_other_paths_are_not_found(gateway):
    import urllib.error
    import urllib.request

    base = gateway.url.replace("ws://", "http://").removesuffix("/ws")
    with urllib.request.urlopen(base + "/healthz", timeout=5) as response:  # noqa: S310  (loopback)
        assert response.status == 200 and response.read() == b"ok\n"
    try:
        urllib.request.urlopen(base + "/graphql", timeout=5)  # noqa: S310
    except urllib.error.HTTPError as error:
        assert error.code == 404
    else:
        raise AssertionError("a path other than /ws and /healthz was answered")
