"""A payment is locked with its order in one statement, once per transaction: the sandbox's event, processed
inside start_payment, reuses the rows."""

from __future__ import annotations

from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

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
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
