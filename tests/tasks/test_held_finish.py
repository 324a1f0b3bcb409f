"""The mark that settles a held email after its send commits without waiting for its WAL flush, in its own
transaction only: the transaction that queued the email (with the payment's outcome) stays durable."""

from __future__ import annotations

from sqlalchemy import event, text

from models.emails.actions import queue_email, send_after_commit


def test_the_held_finish_alone_skips_the_wal_flush_wait(app, mail_dir):
    from tasks.emails import send_held

    from models.emails.marks import SentMarks

    shop = app.extensions["shop"]
    shop.sent_marks = SentMarks(shop.db, every=60)  # committed by the flush below, not by the add or a timer
    shop.sent_marks.flush()
    seen: list[str] = []

    settings_after: list[str] = []

    def note(conn, cursor, statement, *_):
        seen.append(" ".join(statement.split()))

    def setting_after(conn, cursor, *_):  # what the transaction's commit will use, read in that transaction
        with cursor.connection.cursor() as probe:
            probe.execute("SHOW synchronous_commit")
            settings_after.append(probe.fetchone()[0])

    event.listen(shop.db.engine, "before_cursor_execute", note)
    event.listen(shop.db.engine, "after_cursor_execute", setting_after)
    try:
        with shop.db.session() as session:
            held = send_after_commit(session)
            queue_email(session, "held@example.com", "account_locked", minutes=15)
        queued = list(seen)
        send_held(shop, held)
        assert shop.sent_marks.flush() == 1
        finished = seen[len(queued):]
    finally:
        event.remove(shop.db.engine, "before_cursor_execute", note)
        event.remove(shop.db.engine, "after_cursor_execute", setting_after)
    assert not any("synchronous_commit" in s for s in queued)  # the email's attempt commits durably
    # one statement: the mark, and the setting for its own transaction only (set_config's `true`: SET LOCAL)
    assert len(finished) == 1 and finished[0].startswith("WITH outbox_done AS")
    assert "UPDATE email_messages SET status" in finished[0] and "set_config" in finished[0]
    assert settings_after[len(queued):] == ["off"] and "off" not in settings_after[:len(queued)]
    with shop.db.engine.connect() as conn:  # SET LOCAL: nothing leaks to the next user of the connection
        assert conn.execute(text("SHOW synchronous_commit")).scalar() == "on"
        assert conn.execute(text("SELECT status FROM email_messages")).scalar() == "sent"
