"""The payments queue: start payments, process provider events, refund."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from celery import shared_task

from integrations.errors import PermanentError, TransientError
from integrations.payments import Amount, Event, Intent, intent_from_object
# Imported with this module, so before the worker's pool forks: event signatures are checked with the stripe
# library, whose import would otherwise cost every new pool process a tenth of a second at its first payment.
from integrations.payments import signing  # noqa: F401
from models.money import minor_units
from models.orders import actions, webhooks
from models.orders.history import record
from models.emails.actions import send_after_commit
from models.orders.tables import Order, Payment, Refund
from models import task_names as names
from tasks import runtime, vendors
from tasks.base import ShopTask
from tasks.emails import send_held

log = logging.getLogger(__name__)


# The order queues' tasks share the base of all tasks (its retries cover database errors too);
# the name stays for the modules that import it.
OrderTask = ShopTask


def gateway_amount(amount, currency: str) -> Amount:
    """What the gateway charges or refunds: minor units by the currency's decimals (JPY 0, KWD 3)."""
    return Amount(minor_units(amount, currency), currency)


@shared_task(base=ShopTask, bind=True, name=names.START_PAYMENT)
def start_payment(self, payment_id: str) -> str:
    """Create and confirm the PaymentIntent (idempotent by our payment id); the outcome comes as an event.

    One transaction: lock the order and payment (one statement), call the gateway, and, for the sandbox,
    store and act on its signed event with the rows already held; the payment, the order's move and its
    history go out in the one flush at commit. The emails the outcome queues are written with their first
    attempt begun and sent by this task after the commit (`send_held`), their outbox rows held back as the
    safety net. A redelivery after a crash finds the payment still `processing` and does it all again (the
    gateway is idempotent by our payment id); after the commit it finds it settled and does nothing (an
    email not yet sent then is sent by its own delivery, once the sweep publishes its held row).
    """
    gateway = self.shop.payments
    with self.session() as session:
        held = send_after_commit(session)
        payment = actions.lock_payment(session, uuid.UUID(payment_id))
        if payment is None or payment.status != "processing":
            return "already handled"
        try:
            intent = gateway.pay(payment_id, str(payment.order_id), gateway_amount(payment.amount, payment.currency),
                                 payment.method)
        except PermanentError as exc:  # a refused request, not a decline: the customer may pay again
            actions.payment_error(session, payment, str(exc))
            return "error"
        payment.reference = intent.reference
        record(session, session.get(Order, payment.order_id), "payment.started", "payments",
               data={"paymentId": payment_id, "reference": intent.reference, "status": intent.status})
        if intent.succeeded or intent.failed:  # Stripe answered for good: don't depend on the webhook alone
            actions.payment_outcome(session, payment.id, intent.succeeded, intent.reference, intent.failure,
                                    source=f"{gateway.name}:confirm")
        # The sandbox: hand its signed events to the webhook path. Asked of the bare gateway: they are what
        # a Stripe account would post to us, not a vendor call for the breaker to count (two Redis trips).
        if hasattr(bare := self.shop.payment_gateway, "pending_events"):
            for body, signature in bare.pending_events(intent.reference):
                receive_event(session, body, signature, held=payment)
    if held:  # the confirmation (or cancellation) email, its attempt committed with the payment's outcome
        send_held(self.shop, held)
    log.info("payment started", extra={"payment_id": payment_id, "reference": intent.reference})
    return intent.status


def receive_event(session, body: bytes, signature: str, held=None) -> bool:
    """What POST /webhooks/stripe does (verify the raw body, store the event once), then process it.

    The event is processed in the caller's transaction rather than by a queued
    task: the caller is a task, redelivered (handing the event over again) if
    it dies before that transaction commits. It is stored already marked
    processed (the row is this transaction's until it commits).

    `held`: the payment the caller holds locked, whose event was made from the
    intent as the gateway holds it now (the sandbox's `pending_events`): the
    intent in the event is acted on as it is, without asking the gateway again,
    and the event is stored by the statement that writes the move it causes
    (`webhooks.store_with_move`).
    """
    event = vendors.payment_gateway().parse_event(body, signature)
    provider = vendors.payments().name
    if held is not None:
        webhooks.store_with_move(session, provider, event.id, event.type, event.payload)
        outcome = _act(session, provider, event, held)
        webhooks.store_left(session)
    elif webhooks.store_event(session, provider, event.id, event.type, event.payload, queue=False):
        outcome = _act(session, provider, event, held)
    else:
        return False
    log.info("payment event processed", extra={"event_id": event.id, "type": event.type, "outcome": outcome})
    return True


@shared_task(base=ShopTask, bind=True, name=names.PROCESS_PAYMENT_EVENT)
def process_event(self, provider: str, event_id: str) -> str:
    """Act on a stored event once, after re-reading the PaymentIntent (events may arrive out of order)."""
    with self.session() as session:
        outcome = _process_stored(session, provider, event_id)
    log.info("payment event processed", extra={"event_id": event_id, "outcome": outcome})
    return outcome


def _process_stored(session, provider: str, event_id: str) -> str:
    """Lock the stored event, act on it unless already processed, and mark it processed."""
    stored = webhooks.lock_unprocessed(session, provider, event_id)
    if stored is None:
        return "already processed"
    obj = stored.payload.get("data", {}).get("object", {})
    outcome = _act(session, provider, Event(event_id, stored.type, obj.get("id", ""), stored.payload))
    webhooks.mark_processed(stored)
    return outcome


def _act(session, provider: str, event: Event, held=None) -> str:
    if event.type.startswith("payment_intent."):
        return _payment_event(session, provider, event, held)
    if event.type == "charge.refunded" or event.type.startswith("refund."):
        return _refund_event(session, provider, event)
    return "ignored"


def _payment_event(session, provider: str, event: Event, held=None) -> str:
    """Apply the intent's outcome; events may come out of order, so the intent is read again from the
    provider, unless the caller (`held`) made the event from the intent as it stands."""
    if held is not None:
        intent = intent_from_object(event.payload["data"]["object"])
    else:
        intent: Intent = vendors.payments().retrieve(event.object_id)
    payment = webhooks.payment_by_reference(session, provider, intent.reference, intent.payment_id, held=held)
    if payment is None:
        return "unknown payment"
    if not (intent.succeeded or intent.failed):
        return f"intent is {intent.status}"
    return actions.payment_outcome(session, payment.id, intent.succeeded, intent.reference,
                                   intent.failure, source=f"{provider}:{event.id}")


def _refund_event(session, provider: str, event: Event) -> str:
    obj = event.payload["data"]["object"]
    refunds = obj.get("refunds", {}).get("data", []) if obj.get("object") == "charge" else [obj]
    settled = 0
    for found in refunds:
        if found.get("status") not in ("succeeded", "failed"):
            continue
        ours = webhooks.refunds_by_reference(session, provider, [found["id"]],
                                             [v for v in [(found.get("metadata") or {}).get("refund_id")] if v])
        for refund in ours:
            settled += actions.refund_settled(session, refund.id, found["id"], found["status"] == "succeeded",
                                              source=f"{provider}:{event.id}")
    return f"{settled} refunds settled"


@shared_task(base=ShopTask, bind=True, name=names.REFUND_PAYMENT)
def refund_payment(self, refund_id: str) -> str:
    """Ask the provider for the refund (idempotent by our refund id) and record a settled answer."""
    with self.session() as session:
        refund = session.get(Refund, uuid.UUID(refund_id), with_for_update=True)
        if refund is None or refund.status != "pending":
            return "already handled"
        payment = session.get(Payment, refund.payment_id)
        result = self.shop.payments.refund(refund_id, payment.reference,
                                           gateway_amount(refund.amount, payment.currency))
        refund.reference = result.reference
        if result.settled:
            actions.refund_settled(session, refund.id, result.reference, result.status == "succeeded")
    return result.status


@shared_task(base=ShopTask, bind=True, name=names.EXPIRE_UNPAID_ORDERS)
def expire_unpaid_orders(self) -> int:
    """Beat: cancel orders left unpaid longer than ORDER_PAYMENT_TIMEOUT and release their stock."""
    with self.session() as session:
        count, in_flight = actions.expire_unpaid(session, timedelta(seconds=self.shop.settings.ORDER_PAYMENT_TIMEOUT))
    for payment_id in in_flight:
        try:
            count += settle_expired_payment(payment_id) == "cancelled"
        except TransientError as exc:  # the provider is away: the next run asks again
            log.warning("could not settle an expired payment", extra={"payment_id": str(payment_id),
                                                                      "error": str(exc)})
    if count:
        log.info("unpaid orders cancelled", extra={"count": count})
    return count


def settle_expired_payment(payment_id: uuid.UUID) -> str:
    """Ask the provider about a payment whose order timed out: keep it if it succeeded, else cancel it there."""
    gateway = vendors.payments()
    with runtime.database().session() as session:
        payment = actions.lock_payment(session, payment_id)
        if payment is None or payment.status != "processing":
            return "already handled"
        try:
            intent = gateway.retrieve(payment.reference)
            if not (intent.succeeded or intent.failed):
                intent = gateway.cancel(str(payment.id), payment.reference)
        except PermanentError:  # the provider has no such intent: no money was taken
            intent = Intent(payment.reference, "canceled", str(payment.id))
        outcome = actions.payment_outcome(session, payment.id, intent.succeeded, intent.reference,
                                          "payment timeout", source=f"{gateway.name}:timeout", timed_out=True)
    return "paid" if outcome == "paid" else "cancelled"
