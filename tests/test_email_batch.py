"""One run of the emails task sends other queued messages too, each exactly once, through real workers."""

from __future__ import annotations

import os
import signal
import uuid

from sqlalchemy import text

from models.emails.tables import EmailMessage
from tests.conftest import start_worker
from tests.helpers import mails, wait_for

SEND = "tasks.emails.send_email"


def queue_rows(app, count: int) -> list[str]:
    """Messages queued without their tasks (as if their outbox rows were not published yet)."""
    ids = [uuid.uuid4() for _ in range(count)]
    with app.extensions["shop"].db.session() as session:
        session.add_all([EmailMessage(id=i, to_address=f"batch-{n}@example.com", template="account_locked",
                                      context={"minutes": 15}, status="queued") for n, i in enumerate(ids)])
    return [str(i) for i in ids]


def statuses(app) -> dict[str, str]:
    with app.extensions["shop"].db.engine.connect() as conn:
        return dict(conn.execute(text("SELECT id::text, status FROM email_messages")).all())


def sent_to(mail_dir) -> list[str]:
    return sorted(m["To"] for m in mails(mail_dir) if m["To"].startswith("batch-"))


def test_one_run_sends_the_queued_messages_and_their_own_deliveries_find_them_sent(app, celery_app, mail_dir,
                                                                                    tmp_path):
    ids = queue_rows(app, 5)
    worker = start_worker(tmp_path / "w", EMAIL_BATCH_SIZE="4")
    try:
        celery_app.send_task(SEND, kwargs={"message_id": ids[0]}, task_id="batch-first")
        wait_for(lambda: "sent with 3 others" in worker.log(), message="one run to send four messages")
        assert sorted(statuses(app).values()) == ["queued", "sent", "sent", "sent", "sent"]  # at most 4 a run
        for n, message_id in enumerate(ids):  # every message's own delivery, the first one's a second time
            celery_app.send_task(SEND, kwargs={"message_id": message_id}, task_id=f"batch-own-{n}")
        wait_for(lambda: set(statuses(app).values()) == {"sent"}, message="every message sent")
        wait_for(lambda: worker.log().count("'already handled'") >= 4, message="the deliveries to be handled")
    finally:
        worker.stop()
    assert sent_to(mail_dir) == sorted(f"batch-{n}@example.com" for n in range(5))  # each exactly once
    with app.extensions["shop"].db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM email_messages WHERE provider_message_id IS NULL "
                                 "OR sent_at IS NULL OR attempted_at IS NULL")).scalar() == 0


def test_a_worker_killed_mid_batch_leaves_nothing_sent_twice_nor_lost(app, celery_app, mail_dir, tmp_path):
    ids = queue_rows(app, 4)
    # each send takes a second; an attempt cut off is asked about after 2 s
    slow = start_worker(tmp_path / "slow", EMAIL_BATCH_SIZE="4", SANDBOX_EMAIL_LATENCY="1",
                        EMAIL_ACCEPTANCE_LAG="2")
    try:
        celery_app.send_task(SEND, kwargs={"message_id": ids[0]}, task_id="batch-killed")
        wait_for(lambda: len(sent_to(mail_dir)) >= 2, message="the batch to be half way")
        os.killpg(slow.proc.pid, signal.SIGKILL)  # the worker and its pool, between two sends
        slow.proc.wait()
    finally:
        slow.stop()
    written = sent_to(mail_dir)
    assert 2 <= len(written) < 4, written
    assert set(statuses(app).values()) == {"sending"}  # the attempts were committed, their finish was not
    again = start_worker(tmp_path / "again", EMAIL_ACCEPTANCE_LAG="2")
    try:  # the killed run is redelivered (acks late); the others come by their own deliveries
        for n, message_id in enumerate(ids[1:]):
            celery_app.send_task(SEND, kwargs={"message_id": message_id}, task_id=f"batch-after-{n}")
        wait_for(lambda: set(statuses(app).values()) == {"sent"}, timeout=60, message="every message settled")
        wait_for(lambda: again.log().count("email found sent by an earlier attempt") >= len(written),
                 message="the sent ones found at the provider")
    finally:
        again.stop()
    assert sent_to(mail_dir) == sorted(f"batch-{n}@example.com" for n in range(4))  # none twice, none lost
