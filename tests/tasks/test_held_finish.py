"""The mark that settles a held email after its send commits without waiting for its WAL flush, in its own
transaction only: the transaction that queued the email (with the payment's outcome) stays durable."""

from __future__ import annotations

from sqlalchemy import event, text

from models.emails.actions import queue_email, send_after_commit


def test_the_held_finish_alone_skips_the_wal_flush_wait(app, mail_dir):
    from tasks.emails import send_held

    shop = app.extensions["shop"]
    seen: list[str] = []

    def note(conn, cursor, statement, *_):
        seen.append(" ".join(statement.split()))

    event.listen(shop.db.engine, "before_cursor_execute", note)
    try:
        with shop.db.session() as session:
            held = send_after_commit(session)
            queue_email(session, "held@example.com", "account_locked", minutes=15)
        queued = list(seen)
        send_held(shop, held)
        finished = seen[len(queued):]
    finally:
        event.remove(shop.db.engine, "before_cursor_execute", note)
    assert not any("synchronous_commit" in s for s in queued)  # the email's attempt commits durably
    assert finished[0].startswith("SET LOCAL synchronous_commit")  # first in the finishing transaction
    assert any("UPDATE email_messages SET status" in s for s in finished[1:])
    with shop.db.engine.connect() as conn:  # SET LOCAL: nothing leaks to the next user of the connection
        assert conn.execute(text("SHOW synchronous_commit")).scalar() == "on"
        assert conn.execute(text("SELECT status FROM email_messages")).scalar() == "sent"
