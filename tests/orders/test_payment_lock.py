"""A payment is locked once per transaction: the sandbox's event, processed inside start_payment, reuses it."""

from __future__ import annotations

from sqlalchemy import event, text

from models.orders import actions
from tests.orders.conftest import place


def test_a_second_lock_in_the_same_transaction_reuses_the_rows_and_a_new_one_locks_again(app, client, people,
                                                                                             make_variant):
    _, headers = people["customer"]
    order = place(client, headers, make_variant()).json
    payment_id = __import__("uuid").UUID(order["payment"]["id"])
    db = app.extensions["shop"].db
    statements, mine = [], []

    def listener(conn, cursor, statement, *args):  # other threads (publisher, broadcaster) share the engine
        if conn in mine:
            statements.append(statement)
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        with db.session() as session:
            mine.append(session.connection())
            first = actions.lock_payment(session, payment_id)
            locked = len(statements)
            assert locked >= 2 and all("FOR UPDATE" in s for s in statements[-2:])
            assert actions.lock_payment(session, payment_id) is first
            assert len(statements) == locked  # no SQL: this transaction holds both rows
            with db.engine.connect() as other:  # and it really holds them
                other.execute(text("SET lock_timeout = '200ms'"))
                try:
                    other.execute(text("SELECT 1 FROM payments WHERE id = :id FOR UPDATE"), {"id": payment_id})
                    raise AssertionError("the payment was not locked")
                except Exception as exc:  # noqa: BLE001
                    assert "lock timeout" in str(exc)
        with db.session() as session:
            mine.append(session.connection())
            assert actions.lock_payment(session, payment_id).id == payment_id
            assert len(statements) >= locked + 2  # a new transaction takes the locks again
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
