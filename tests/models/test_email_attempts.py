"""An email's attempt marks: one statement each, and a finish only settles the attempt it belongs to."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import text

from models.emails import actions as emails
from models.emails.tables import EmailMessage


def row(app, message_id):
    with app.extensions["shop"].db.engine.connect() as conn:
        return conn.execute(text("SELECT status, attempted_at, provider_message_id, sent_at IS NOT NULL "
                                 "FROM email_messages WHERE id = :id"), {"id": message_id}).one()


def queued(app) -> str:
    with app.extensions["shop"].db.session() as session:
        message = EmailMessage(id=uuid.uuid4(), to_address="a@example.com", template="order_confirmation",
                               context={}, status="queued")
        session.add(message)
    return str(message.id)


def test_the_attempt_mark_is_the_databases_and_the_object_sees_it(app):
    message_id = queued(app)
    db = app.extensions["shop"].db
    with db.session() as session:
        message = emails.lock_for_sending(session, message_id)
        attempt = emails.mark_attempt(session, message)
        assert message.status == "sending" and message.attempted_at == attempt
    assert row(app, message_id)[:2] == ("sending", attempt)
    with db.session() as session:
        emails.finish_attempt(session, message_id, attempt, "provider-1")
    assert row(app, message_id) == ("sent", attempt, "provider-1", True)


def test_a_finish_for_an_attempt_another_delivery_replaced_changes_nothing(app):
    message_id = queued(app)
    db = app.extensions["shop"].db
    with db.session() as session:
        first = emails.mark_attempt(session, emails.lock_for_sending(session, message_id))
    with db.session() as session:  # a later delivery begins its own attempt
        second = emails.mark_attempt(session, emails.lock_for_sending(session, message_id))
    assert second > first
    with db.session() as session:
        emails.finish_attempt(session, message_id, first, "stale")
    assert row(app, message_id) == ("sending", second, None, False)
    with db.session() as session:
        emails.finish_attempt(session, message_id, second, "provider-2")
    assert row(app, message_id) == ("sent", second, "provider-2", True)


def test_a_delivery_that_must_not_wait_is_told_the_row_is_held_at_once(app):
    """A batch holds its messages' rows while it sends: their own deliveries are told so instead of waiting."""
    message_id = queued(app)
    db = app.extensions["shop"].db
    with db.session() as batch:
        assert emails.lock_for_sending(batch, message_id) is not None  # held, as a batch holds it while sending
        with db.session() as delivery:
            started = time.monotonic()
            with pytest.raises(emails.Busy):
                emails.lock_for_sending(delivery, message_id, wait=False)
            assert time.monotonic() - started < 2  # told, not held behind the batch's lock
    with db.session() as delivery:  # released: the delivery gets the row
        assert emails.lock_for_sending(delivery, message_id, wait=False).id == uuid.UUID(message_id)
