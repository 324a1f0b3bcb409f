"""A payment is locked with its order in one statement, once per transaction: the sandbox's event, processed
inside start_payment, reuses the rows."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from models.orders import actions
from tests.orders.conftest import place, status_of


@contextmanager
def counted(db):
    """(statements, connections): the statements sent on the connections the caller appends (other threads,
    the publisher's and the broadcaster's, share the engine)."""
    statements, mine = [], []

    def listener(conn, cursor, statement, *args):
        if conn in mine:
            statements.append(statement)
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        yield statements, mine
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)


def placed_payment(client, people, make_variant) -> tuple[dict, uuid.UUID]:
    _, headers = people["customer"]
    order = place(client, headers, make_variant()).json
    return order, uuid.UUID(order["payment"]["id"])


def test_a_second_lock_in_the_same_transaction_reuses_the_rows_and_a_new_one_locks_again(app, client, people,
                                                                                             make_variant):
    _, payment_id = placed_payment(client, people, make_variant)
    db = app.extensions["shop"].db
    with counted(db) as (statements, mine):
        with db.session() as session:
            mine.append(session.connection())
            first = actions.lock_payment(session, payment_id)
            locked = len(statements)
            assert locked == 1 and "FOR UPDATE OF orders, payments" in statements[0]  # one round trip
            assert actions.lock_payment(session, payment_id) is first
            assert len(statements) == locked  # no SQL: this transaction holds both rows
            with db.engine.connect() as other:  # and it really holds them
                other.execute(text("SET lock_timeout = '200ms'"))
                other.commit()
                for table, row_id in (("payments", payment_id), ("orders", first.order_id)):  # both rows
                    try:
                        other.execute(text(f"SELECT 1 FROM {table} WHERE id = :id FOR UPDATE"), {"id": row_id})
                    except OperationalError as exc:
                        assert "lock timeout" in str(exc)
                        other.rollback()
                    else:
                        raise AssertionError(f"the {table} row was not locked")
        with db.session() as session:
            mine.append(session.connection())
            assert actions.lock_payment(session, payment_id).id == payment_id
            assert len(statements) == locked + 1  # a new transaction takes the locks again


def test_the_paid_move_is_written_in_one_statement_and_leaves_nothing_of_it_to_flush(app, client, people, make_variant):
    """Payment, order and both history rows (the payment's start and the move) in one round trip."""
    from models.orders.history import record
    from models.orders.tables import Order

    order, payment_id = placed_payment(client, people, make_variant)
    db = app.extensions["shop"].db
    with counted(db) as (statements, mine):
        with db.session() as session:
            mine.append(session.connection())
            payment = actions.lock_payment(session, payment_id)
            payment.reference = "pi_written_at_once"
            record(session, session.get(Order, payment.order_id), "payment.started", "payments",
                   data={"paymentId": str(payment_id)})
            before = len(statements)
            assert actions.payment_outcome(session, payment_id, True, "pi_written_at_once") == "paid"
            moves = [s for s in statements[before:] if "INSERT INTO order_events" in s]
            assert len(moves) == 1 and "UPDATE orders" in moves[0] and "UPDATE payments" in moves[0]
            written = len(statements)
            realtime = [body for _, _, body in session.info["realtime"]["events"]]
        # the commit flushed the emails' rows, nothing of the move
        assert not [s for s in statements[written:] if any(t in s for t in ("orders", "payments", "order_events"))]
    assert [(body["kind"], body["toStatus"]) for body in realtime] == [("payment.started", None),
                                                                      ("transition", "processing")]
    assert realtime[0]["id"] < realtime[1]["id"] and realtime[1]["createdAt"]
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT o.status::text, o.stock_state, p.status, p.reference FROM orders o "
                                 "JOIN payments p ON p.order_id = o.id WHERE p.id = :id"), {"id": payment_id}).one() \
            == ("processing", "allocated", "succeeded", "pi_written_at_once")
        assert conn.execute(text("SELECT kind, from_status::text, to_status::text, data->>'reference' "
                                 "FROM order_events WHERE order_id = :id ORDER BY id"),
                            {"id": order["id"]}).all() == [("created", None, "pending", None),
                                                           ("payment.started", None, None, None),
                                                           ("transition", "pending", "processing",
                                                            "pi_written_at_once")]


def test_the_sandbox_event_is_stored_by_the_statement_of_the_move_it_causes(app, client, people, make_variant):
    """start_payment acts on the event it made for the payment it holds: the event's row goes in the paid move's
    statement (no round trip of its own); a decline, whose move the unit of work writes, stores it on its own."""
    from tasks.payments import start_payment

    _, headers = people["customer"]
    db = app.extensions["shop"].db  # the app's shop is current: a task called directly runs on it
    for method, status, alone in (("sandbox_success", "processing", 0), ("sandbox_decline", "cancelled", 1)):
        order = place(client, headers, make_variant()).json
        assert client.post(f"/api/v1/orders/{order['id']}/pay", json={"paymentMethod": method},
                           headers=headers).status_code == 202
        statements: list[str] = []
        listener = lambda conn, cursor, statement, *args: statements.append(statement)  # noqa: E731, B023 (used before the loop moves on)
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert start_payment(order["payment"]["id"]) == "processing"  # the intent's status at confirmation
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        own = [s for s in statements if s.lstrip().startswith("INSERT INTO webhook_events")]
        assert len(own) == alone, statements
        if not alone:
            [move] = [s for s in statements if "UPDATE orders" in s]
            assert "INSERT INTO webhook_events" in move and "ON CONFLICT DO NOTHING" in move
        assert status_of(app, order["id"]) == status
        with db.engine.connect() as conn:
            [(event_id, processed)] = conn.execute(text(
                "SELECT event_id, processed_at IS NOT NULL FROM webhook_events "
                "WHERE payload->'data'->'object'->'metadata'->>'order_id' = :id"), {"id": order["id"]}).all()
        assert event_id.startswith("evt_sbx_") and processed
