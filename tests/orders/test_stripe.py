"""The Stripe adapter through the unmodified `stripe` library against a Stripe twin, and its webhooks."""

from __future__ import annotations

import uuid
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import text

from integrations.errors import TransientError
from integrations.payments import Amount
from integrations.payments.stripe import StripeGateway
from tasks.payments import gateway_amount
from tests.helpers import mails, wait_for
from tests.orders.conftest import ORDERS, place, status_of, stock_of
from tests.twins.stripe import StripeTwin

WEBHOOK = "/api/v1/webhooks/stripe"


@pytest.fixture(scope="module")
def twin():
    with StripeTwin() as twin:
        yield twin


@pytest.fixture(autouse=True)
def fresh_twin(twin):
    twin.reset()


def stripe_env(twin) -> dict:
    return {"PAYMENTS_PROVIDER": "stripe", "STRIPE_API_KEY": twin.api_key, "STRIPE_API_BASE": twin.url,
            "STRIPE_WEBHOOK_SECRET": twin.webhook_secret}


@pytest.fixture(scope="module")
def stripe_worker(tmp_path_factory, twin):
    from tests.conftest import start_worker

    process = start_worker(tmp_path_factory.mktemp("worker"), pool="threads", **stripe_env(twin))
    yield process
    process.stop()


@pytest.fixture
def app(settings, twin):
    from web import create_app

    app = create_app(replace(settings, **stripe_env(twin)))
    yield app
    app.extensions["shop"].db.dispose()


@pytest.fixture
def gateway(twin):
    return StripeGateway(twin.api_key, twin.webhook_secret, twin.url, timeout=5)


def test_pay_sends_minor_units_our_ids_and_idempotency_keys(gateway, twin):
    payment_id, order_id = str(uuid.uuid4()), str(uuid.uuid4())
    intent = gateway.pay(payment_id, order_id, Amount(2500, "EUR"), "pm_card_visa")
    assert intent.succeeded and intent.payment_id == payment_id
    create, confirm = twin.requests
    assert create["form"] == {"amount": "2500", "currency": "eur", "metadata[order_id]": order_id,
                              "metadata[payment_id]": payment_id}
    assert create["idempotency_key"] == f"payment-{payment_id}-create"
    assert confirm["form"] == {"payment_method": "pm_card_visa"}
    assert confirm["idempotency_key"] == f"payment-{payment_id}-confirm"
    assert gateway.pay(payment_id, order_id, Amount(2500, "EUR"), "pm_card_visa") == intent  # replayed
    assert len(twin.intents) == 1
    refund = gateway.refund("r-1", intent.reference, Amount(550, "EUR"))
    assert refund.settled and twin.requests[-1]["idempotency_key"] == "refund-r-1"
    assert twin.requests[-1]["form"]["amount"] == "550"


@pytest.mark.parametrize(("amount", "currency", "minor"), [
    ("1500", "JPY", "1500"), ("12.345", "KWD", "12345"), ("12.5", "EUR", "1250"), ("0.5", "KWD", "500")])
def test_amounts_reach_stripe_in_the_currencys_own_minor_units(gateway, twin, amount, currency, minor):
    intent = gateway.pay(str(uuid.uuid4()), "o", gateway_amount(Decimal(amount), currency), "pm_card_visa")
    gateway.refund(str(uuid.uuid4()), intent.reference, gateway_amount(Decimal(amount), currency))
    create, _, refund = twin.requests
    assert (create["form"]["amount"], create["form"]["currency"]) == (minor, currency.lower())
    assert refund["form"]["amount"] == minor


def test_a_decline_is_an_outcome_and_a_5xx_is_transient(gateway, twin):
    declined = gateway.pay(str(uuid.uuid4()), "o", Amount(100, "USD"), "pm_card_chargeDeclined")
    assert declined.failed and declined.failure == "Your card was declined."
    twin.fail_next = 1
    with pytest.raises(TransientError):
        gateway.retrieve(declined.reference)


def test_a_bad_signature_is_400_and_stores_nothing(app, twin):
    body, headers = twin.event("payment_intent.succeeded", {"id": "pi_x", "object": "payment_intent"})
    client = app.test_client()
    tampered = client.post(WEBHOOK, data=body.replace(b"pi_x", b"pi_y"), headers=headers)
    unsigned = client.post(WEBHOOK, data=body, headers={"Content-Type": "application/json"})
    assert tampered.status_code == unsigned.status_code == 400
    assert tampered.json["message"] == "invalid signature"
    with app.extensions["shop"].db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM webhook_events")).scalar() == 0


def paid_order(app, client, people, make_variant, twin, method="pm_card_visa", price="15.00", currency="EUR"):
    _, headers = people["customer"]
    variant = make_variant(stock=3, price=price, currency=currency)
    order_id = place(client, headers, variant, 1).json["id"]
    assert client.post(f"{ORDERS}/{order_id}/pay", json={"paymentMethod": method}, headers=headers).status_code == 202
    wait_for(lambda: [r for r in twin.requests if r["path"].endswith("/confirm")], message="the confirmation call")
    [intent] = twin.intents.values()
    return order_id, variant, intent


def transitions(app, order_id):
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text("SELECT from_status, to_status FROM order_events WHERE order_id = :id "
                                 "AND kind = 'transition' ORDER BY id"), {"id": order_id}).all()


def test_a_duplicate_event_makes_one_state_change(stripe_worker, app, people, make_variant, twin, mail_dir):
    client = app.test_client()
    order_id, _, intent = paid_order(app, client, people, make_variant, twin, "pm_card_async")
    assert status_of(app, order_id) == "pending"  # the intent is still processing at Stripe
    intent = twin.settle(intent["id"])
    body, headers = twin.event("payment_intent.succeeded", intent)
    first = client.post(WEBHOOK, data=body, headers=headers)
    again = client.post(WEBHOOK, data=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert (first.json["duplicate"], again.json["duplicate"]) == (False, True)
    wait_for(lambda: status_of(app, order_id) == "processing", message="the order to be paid")
    wait_for(lambda: "payment event processed" in stripe_worker.log(), message="the event to be processed")
    assert transitions(app, order_id) == [("pending", "processing")]
    customer = people["customer"][0]
    wait_for(lambda: mails(mail_dir, customer.email), message="the confirmation")
    assert len(mails(mail_dir, customer.email)) == 1
    with app.extensions["shop"].db.engine.connect() as conn:
        assert conn.execute(text("SELECT reference FROM payments")).scalar() == intent["id"]


def test_events_out_of_order_end_in_the_right_state(stripe_worker, app, people, make_variant, twin):
    client = app.test_client()
    order_id, _, intent = paid_order(app, client, people, make_variant, twin, "pm_card_async")
    intent = twin.settle(intent["id"])
    # a stale failure (from an earlier attempt) arrives after the success happened: the task re-reads the intent
    stale = dict(intent, status="requires_payment_method", last_payment_error={"message": "old"})
    for event_type, obj in (("payment_intent.payment_failed", stale), ("payment_intent.processing", stale),
                            ("payment_intent.succeeded", intent)):
        body, headers = twin.event(event_type, obj)
        assert client.post(WEBHOOK, data=body, headers=headers).status_code == 200
    wait_for(lambda: status_of(app, order_id) == "processing", message="the order to be paid")
    with app.extensions["shop"].db.engine.connect() as conn:
        wait_for(lambda: conn.execute(text("SELECT count(*) FROM webhook_events WHERE processed_at IS NOT NULL"))
                 .scalar() == 3, message="three events processed")
    assert transitions(app, order_id) == [("pending", "processing")]


def test_a_confirmation_that_succeeds_pays_even_before_the_webhook(stripe_worker, app, people, make_variant,
                                                                   twin):
    order_id, _, _ = paid_order(app, app.test_client(), people, make_variant, twin)
    wait_for(lambda: status_of(app, order_id) == "processing", message="the order to be paid")


def test_a_declined_card_cancels_and_its_failed_event_changes_nothing(stripe_worker, app, people, make_variant,
                                                                     twin):
    client = app.test_client()
    order_id, variant, intent = paid_order(app, client, people, make_variant, twin, "pm_card_chargeDeclined")
    assert intent["last_payment_error"]["code"] == "card_declined"
    wait_for(lambda: status_of(app, order_id) == "cancelled", message="the order to be cancelled")
    body, headers = twin.event("payment_intent.payment_failed", intent)
    assert client.post(WEBHOOK, data=body, headers=headers).json["duplicate"] is False
    with app.extensions["shop"].db.engine.connect() as conn:
        wait_for(lambda: conn.execute(text("SELECT processed_at IS NOT NULL FROM webhook_events")).scalar(),
                 message="the event to be processed")
    assert stock_of(app, variant) == (3, 0) and transitions(app, order_id) == [("pending", "cancelled")]


def cancelled_with_pending_refund(app, client, people, make_variant, twin, price="15.00",
                                  currency="EUR") -> tuple[dict, dict]:
    """A paid order cancelled by staff whose refund Stripe reports as pending: (intent, refund)."""
    order_id, _, intent = paid_order(app, client, people, make_variant, twin, price=price, currency=currency)
    twin.refund_status = "pending"
    wait_for(lambda: status_of(app, order_id) == "processing", message="the order to be paid")
    client.post(f"{ORDERS}/{order_id}/cancel", json={}, headers=people["staff"][1])
    wait_for(lambda: twin.refunds, message="the refund request")
    [refund] = twin.refunds.values()
    return intent, refund


def test_a_refund_settles_on_charge_refunded(stripe_worker, app, people, make_variant, twin, mail_dir):
    client = app.test_client()
    intent, refund = cancelled_with_pending_refund(app, client, people, make_variant, twin)
    assert refund["amount"] == 1500 and refund["metadata"]["refund_id"]
    body, headers = twin.event("charge.refunded", twin.charge_refunded(intent["id"]))
    client.post(WEBHOOK, data=body, headers=headers)
    with app.extensions["shop"].db.engine.connect() as conn:
        wait_for(lambda: conn.execute(text("SELECT status, reference FROM refunds")).all()
                 == [("succeeded", refund["id"])], message="the refund to settle")
    customer = people["customer"][0]
    wait_for(lambda: any("refund" in m["Subject"] for m in mails(mail_dir, customer.email)), message="refund email")


@pytest.mark.parametrize(("price", "currency", "minor"), [("1500", "JPY", 1500), ("12.345", "KWD", 12345)])
def test_a_jpy_or_kwd_order_is_charged_and_refunded_in_its_minor_units(stripe_worker, app, people, make_variant,
                                                                       twin, price, currency, minor):
    intent, refund = cancelled_with_pending_refund(app, app.test_client(), people, make_variant, twin, price,
                                                   currency)
    assert (intent["amount"], intent["currency"]) == (minor, currency.lower())
    assert refund["amount"] == minor


def age(app, order_id):
    with app.extensions["shop"].db.engine.begin() as conn:
        conn.execute(text("UPDATE orders SET created_at = now() - interval '1 hour' WHERE id = :id"), {"id": order_id})


def test_a_timed_out_order_cancels_its_intent_at_stripe(celery_app, stripe_worker, app, people, make_variant, twin):

    order_id, variant, intent = paid_order(app, app.test_client(), people, make_variant, twin, "pm_card_async")
    wait_for(lambda: _payment_reference(app) == intent["id"], message="the reference to be stored")
    age(app, order_id)
    celery_app.send_task("tasks.payments.expire_unpaid_orders")
    wait_for(lambda: status_of(app, order_id) == "cancelled", message="the order to expire")
    assert twin.intents[intent["id"]]["status"] == "canceled"
    assert [r["idempotency_key"] for r in twin.requests if r["path"].endswith("/cancel")] == [
        f"payment-{_payment_id(app)}-cancel"]
    assert stock_of(app, variant) == (3, 0)


def test_a_timed_out_order_whose_payment_succeeded_is_kept(celery_app, stripe_worker, app, people, make_variant, twin):

    order_id, _, intent = paid_order(app, app.test_client(), people, make_variant, twin, "pm_card_async")
    wait_for(lambda: _payment_reference(app) == intent["id"], message="the reference to be stored")
    twin.settle(intent["id"])  # the money arrived, its webhook did not
    age(app, order_id)
    celery_app.send_task("tasks.payments.expire_unpaid_orders")
    wait_for(lambda: status_of(app, order_id) == "processing", message="the order to be paid")
    assert not [r for r in twin.requests if r["path"].endswith("/cancel")]


def _payment_reference(app):
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text("SELECT reference FROM payments")).scalar()


def _payment_id(app):
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text("SELECT id FROM payments")).scalar()


def test_a_refund_settles_on_refund_updated(stripe_worker, app, people, make_variant, twin):
    client = app.test_client()
    _, refund = cancelled_with_pending_refund(app, client, people, make_variant, twin)
    body, headers = twin.event("refund.updated", dict(refund, status="succeeded"))
    assert client.post(WEBHOOK, data=body, headers=headers).status_code == 200
    with app.extensions["shop"].db.engine.connect() as conn:
        wait_for(lambda: conn.execute(text("SELECT status FROM refunds")).scalar() == "succeeded",
                 message="the refund to settle")
