"""Emails sent by the transaction's caller right after its commit (`send_after_commit`), exactly once, and the
outbox row that stays their guarantee when that caller never finishes."""

from __future__ import annotations

from sqlalchemy import text

from integrations.errors import PermanentError
from models.emails.actions import queue_email, send_after_commit
from tests.conftest import start_worker
from tests.helpers import mails, wait_for

SEND = "tasks.emails.send_email"


def rows(app, sql: str) -> list[tuple]:
    with app.extensions["shop"].db.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql)).all()]


def hold(app, to: str) -> list:
    """One email queued in a transaction whose caller sends it; the held emails once committed."""
    with app.extensions["shop"].db.session() as session:
        held = send_after_commit(session)
        queue_email(session, to, "account_locked", minutes=15)
    return held


def test_a_held_email_commits_its_attempt_and_is_sent_without_a_task(app, mail_dir):
    from tasks.emails import send_held

    held = hold(app, "held@example.com")
    assert len(held) == 1 and held[0].attempt is not None  # the attempt mark came back with the INSERT
    [(status, attempted)] = rows(app, "SELECT status, attempted_at FROM email_messages")
    assert status == "sending" and attempted == held[0].attempt  # committed before the provider is called
    assert rows(app, "SELECT published_at FROM outbox") == [(None,)]  # not handed to the publisher
    send_held(app.extensions["shop"], held)
    # the mark commits within SentMarks.EVERY, here by its timer thread (nothing else is sent meanwhile)
    wait_for(lambda: rows(app, "SELECT status FROM email_messages") == [("sent",)], timeout=5,
             message="the held email marked sent")
    [(published,)] = rows(app, "SELECT published_at FROM outbox")
    assert published is not None  # its work done: the sweep will never publish it
    assert [m["To"] for m in mails(mail_dir)] == ["held@example.com"]


def test_an_email_with_a_prepare_hook_is_not_held(app):
    from models.users.actions import VERIFY_EMAIL

    with app.extensions["shop"].db.session() as session:
        held = send_after_commit(session)
        queue_email(session, "hook@example.com", VERIFY_EMAIL, user_id="00000000-0000-0000-0000-000000000000")
    assert held == []
    assert rows(app, "SELECT status, attempted_at FROM email_messages") == [("queued", None)]


def test_a_held_email_whose_sender_died_is_sent_once_by_its_own_delivery(app, celery_app, mail_dir, tmp_path):
    """The caller never sends (killed after the commit): the sweep publishes the row, and `send_email` finds the
    attempt, waits EMAIL_ACCEPTANCE_LAG, asks the provider (nothing accepted) and sends it."""
    hold(app, "orphan@example.com")
    worker = start_worker(tmp_path / "w")
    try:
        assert app.extensions["shop"].relay.sweep(older_than=0) == 1
        wait_for(lambda: rows(app, "SELECT status FROM email_messages") == [("sent",)], timeout=30,
                 message="the orphaned email sent by its own delivery")
    finally:
        worker.stop()
    assert [m["To"] for m in mails(mail_dir)] == ["orphan@example.com"]


def test_a_refused_held_email_goes_back_to_its_own_delivery(app, celery_app, mail_dir, tmp_path, monkeypatch):
    from tasks.emails import send_held

    held = hold(app, "refused@example.com")
    shop = app.extensions["shop"]
    def refuse(email):
        raise PermanentError("provider refused", refused=True)

    monkeypatch.setattr(shop.email, "send", refuse)
    send_held(shop, held)
    # the attempt never reached the provider: cleared, and the row handed to the publisher at once
    assert rows(app, "SELECT status, attempted_at FROM email_messages") == [("queued", None)]
    monkeypatch.undo()
    worker = start_worker(tmp_path / "w")
    try:
        wait_for(lambda: rows(app, "SELECT status FROM email_messages") == [("sent",)], timeout=30,
                 message="its own delivery to send it")
    finally:
        worker.stop()
    assert [m["To"] for m in mails(mail_dir)] == ["refused@example.com"]


def test_the_sent_marks_of_several_held_emails_commit_together(app, mail_dir):
    """Sent in a burst (a worker process's payments), their marks are one statement, not one transaction each."""
    from sqlalchemy import event

    from models.emails.marks import SentMarks
    from tasks.emails import send_held

    shop = app.extensions["shop"]
    shop.sent_marks = SentMarks(shop.db, every=60)  # no timer fires during the test: only flush commits
    shop.sent_marks.flush()  # the first add after a quiet spell would commit at once
    statements: list[str] = []
    event.listen(shop.db.engine, "before_cursor_execute", lambda conn, cursor, sql, *_: statements.append(sql))
    for n in range(5):
        send_held(shop, hold(app, f"burst{n}@example.com"))
    assert rows(app, "SELECT count(*) FROM email_messages WHERE status = 'sending'") == [(5,)]  # sent, unmarked
    assert len(mails(mail_dir)) == 5 and shop.sent_marks.pending() == 5
    queued = len(statements)
    assert shop.sent_marks.flush() == 5
    assert len(statements) == queued + 1  # one UPDATE for the five (the session's BEGIN is implicit)
    assert rows(app, "SELECT status, count(*) FROM email_messages GROUP BY status") == [("sent", 5)]
    assert rows(app, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == [(0,)]
    shop.sent_marks.close()


def test_a_held_email_whose_mark_was_lost_is_found_sent_and_not_sent_again(app, celery_app, mail_dir, tmp_path):
    """The process dies after the send, before its mark commits: the sweep publishes the row, `send_email` finds
    the attempt older than EMAIL_ACCEPTANCE_LAG, asks the provider, finds it accepted and marks it sent."""
    from models.emails.marks import SentMarks
    from tasks.emails import send_held

    shop = app.extensions["shop"]
    shop.sent_marks = SentMarks(shop.db, every=60)
    shop.sent_marks.flush()
    send_held(shop, hold(app, "unmarked@example.com"))
    assert shop.sent_marks.pending() == 1
    shop.sent_marks.close(flush=False)  # the process is gone, and its marks with it
    assert rows(app, "SELECT status FROM email_messages") == [("sending",)]
    worker = start_worker(tmp_path / "w")
    try:
        assert shop.relay.sweep(older_than=0) == 1
        wait_for(lambda: rows(app, "SELECT status FROM email_messages") == [("sent",)], timeout=30,
                 message="the accepted email marked sent by its own delivery")
    finally:
        worker.stop()
    assert [m["To"] for m in mails(mail_dir)] == ["unmarked@example.com"]  # once
