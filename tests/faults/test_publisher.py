"""The background outbox publisher: responses never wait for the broker's confirm, nothing is lost or doubled.

A stalling TCP proxy (tests/faults/proxy.py) in front of the suite's broker
holds back the broker's confirms: that is a broker whose quorum queues wait
on a busy disk, as the client sees it. Workers consume from the broker
directly, so they are not slowed by the stall.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import replace
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import text

from tests.conftest import VHOST
from tests.faults.ledger import settled
from tests.faults.proxy import StallingProxy
from tests.helpers import Process, bearer, make_user, mails, wait_for, wait_for_mail
from tests.orders.conftest import ORDERS, place

REGISTER = "/api/v1/auth/register"


def _registration(email: str) -> dict:
    return {"email": email, "password": "Passw0rd!", "firstName": "Ada", "lastName": "Lovelace"}


@pytest.fixture
def proxy(settings):
    proxy = StallingProxy(urlsplit(settings.CELERY_BROKER_URL).port or 5672)
    yield proxy
    proxy.close()


@pytest.fixture
def slow_app(settings, proxy):
    """The app publishing through the proxy."""
    from web import create_app

    # One publisher thread: the one whose connection the warm-up opened before the stall.
    app = create_app(replace(settings, CELERY_BROKER_URL=proxy.url(VHOST), OUTBOX_PUBLISHER_THREADS=1))
    yield app
    proxy.flow()
    app.extensions["shop"].relay.close()
    app.extensions["shop"].db.dispose()


def _count(engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


UNPUBLISHED = "SELECT count(*) FROM outbox WHERE published_at IS NULL"


def test_registration_answers_while_the_broker_withholds_its_confirm_and_the_email_goes_once(
        worker, slow_app, proxy, mail_dir):
    client, engine = slow_app.test_client(), slow_app.extensions["shop"].db.engine
    assert client.post(REGISTER, json=_registration("warm@example.com")).status_code == 201
    wait_for_mail(mail_dir, "warm@example.com")
    proxy.stall()
    answer = client.post(REGISTER, json=_registration("slow@example.com"))
    assert answer.status_code == 201
    assert _count(engine, UNPUBLISHED) == 1  # answered before the broker confirmed the publish
    proxy.flow()
    wait_for(lambda: _count(engine, UNPUBLISHED) == 0, message="the confirm, then the row marked")
    wait_for_mail(mail_dir, "slow@example.com")
    assert _count(engine, "SELECT count(*) FROM outbox WHERE attempts > 0") == 0
    wait_for(lambda: "'already handled'" not in worker.log() and len(mails(mail_dir)) == 2, timeout=5)
    assert len(mails(mail_dir, "slow@example.com")) == 1


def test_close_flushes_what_is_queued_and_a_full_queue_leaves_rows_to_the_sweep(
        worker, settings, proxy, mail_dir):
    from web import create_app

    app = create_app(replace(settings, CELERY_BROKER_URL=proxy.url(VHOST), OUTBOX_QUEUE_SIZE=1,
                             OUTBOX_PUBLISHER_THREADS=1))
    client, relay, engine = app.test_client(), app.extensions["shop"].relay, app.extensions["shop"].db.engine
    try:
        assert client.post(REGISTER, json=_registration("warm@example.com")).status_code == 201
        wait_for(lambda: _count(engine, UNPUBLISHED) == 0, message="the publisher's connection")
        proxy.stall()
        for n in range(3):
            assert client.post(REGISTER, json=_registration(f"q{n}@example.com")).status_code == 201
        assert relay.publisher.dropped >= 1  # one in flight, at most one queued: the rest is the sweep's
        proxy.flow()
        assert relay.close(timeout=30) is True
        assert _count(engine, UNPUBLISHED) == relay.publisher.dropped
        assert relay.sweep(older_than=0) == relay.publisher.dropped
    finally:
        proxy.flow()
        relay.close()
        app.extensions["shop"].db.dispose()
    for n in range(3):
        wait_for_mail(mail_dir, f"q{n}@example.com")
    assert _count(engine, UNPUBLISHED) == 0
    assert [len(mails(mail_dir, f"q{n}@example.com")) for n in range(3)] == [1, 1, 1]
    assert len(mails(mail_dir)) == 4


def test_a_task_queued_in_a_prefork_child_is_published_by_that_child(worker, app, client, make_variant, mail_dir):
    """No beat runs: what a pool process queues reaches the broker only through that process's own publisher.

    A paid order's confirmation is sent by `start_payment` itself after its commit (its outbox row is held,
    then marked done, never published); a declined payment releases the stock, which queues the product's
    indexing from the pool process when it opens a window of time of its own (after the checkout's)."""
    with app.extensions["shop"].db.session() as session:
        customer = make_user(session, "customer")
    headers = bearer(app, customer)
    engine = app.extensions["shop"].db.engine
    placed = place(client, headers, make_variant(), 1)
    assert placed.status_code == 201
    paying = client.post(f"{ORDERS}/{placed.json['id']}/pay", json={"paymentMethod": "sandbox_success"},
                         headers=headers)
    assert paying.status_code == 202
    wait_for(lambda: settled(engine, mail_dir, [placed.json["id"]]), timeout=30, message="payment and email")
    wait_for(lambda: _count(engine, UNPUBLISHED) == 0, message="every row published")
    assert len([m for m in mails(mail_dir) if "is confirmed" in (m["Subject"] or "")]) == 1

    declined = place(client, headers, make_variant(), 1)
    wait_for(lambda: _count(engine, "SELECT count(*) FROM search_pending") == 0, message="the checkout's indexing")
    # past the last window opened: the release then opens its own (one already open covers it with no new task)
    time.sleep(max(0.0, float(_count(engine, "SELECT extract(epoch FROM max(starts_at)) FROM search_windows"))
                   + 1 - time.time()))
    before = _count(engine, "SELECT count(*) FROM outbox WHERE task = 'tasks.search.index_pending'")
    assert client.post(f"{ORDERS}/{declined.json['id']}/pay", json={"paymentMethod": "sandbox_decline"},
                       headers=headers).status_code == 202
    wait_for(lambda: _count(engine, "SELECT count(*) FROM outbox WHERE task = 'tasks.search.index_pending'")
             == before + 1, message="the release's indexing queued by the pool process")
    wait_for(lambda: _count(engine, UNPUBLISHED) == 0 and _count(engine, "SELECT count(*) FROM search_pending") == 0,
             message="the pool process's row published and its task run")
    assert _count(engine, "SELECT count(*) FROM outbox WHERE attempts > 0") == 0
    wait_for(lambda: [m for m in mails(mail_dir) if "was cancelled" in (m["Subject"] or "")], timeout=5)


@pytest.mark.timeout(180)
def test_gunicorn_preloaded_workers_publish_their_own_and_flush_on_sigterm(
        worker, settings, proxy, mail_dir, tmp_path):
    from sqlalchemy import create_engine

    from tests.faults.services import free_port

    port = free_port()
    (tmp_path / "prometheus").mkdir()  # the preloaded app records its first request before on_starting runs
    server = Process([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--preload",
                      "tests.faults.preloaded:app"], tmp_path / "gunicorn.log",
                     env={"PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "2",
                          "CELERY_BROKER_URL": proxy.url(VHOST), "OUTBOX_FLUSH_SECONDS": "10",
                          "OUTBOX_PUBLISHER_THREADS": "1",
                          "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus")},
                     ready="Booting worker").start()
    engine = create_engine(settings.DATABASE_URL)
    try:
        wait_for(lambda: server.log().count("Booting worker") == 2, message="two workers")
        url = f"http://127.0.0.1:{port}{REGISTER}"
        for n in range(8):  # two workers share the listening socket: both serve some
            assert requests.post(url, json=_registration(f"w{n}@example.com"), timeout=10).status_code == 201
        wait_for(lambda: _count(engine, UNPUBLISHED) == 0, timeout=30, message="the workers' publishers")
        proxy.stall()
        for n in range(4):
            assert requests.post(url, json=_registration(f"s{n}@example.com"), timeout=10).status_code == 201
        assert _count(engine, UNPUBLISHED) >= 1
        os.kill(server.proc.pid, signal.SIGTERM)
        wait_for(lambda: server.log().count("Worker exiting") == 2, timeout=30, message="workers stopping")
        assert server.proc.poll() is None  # the workers wait on their publishers
        proxy.flow()
        wait_for(lambda: server.proc.poll() is not None, timeout=30, message="gunicorn to exit")
        assert _count(engine, UNPUBLISHED) == 0  # flushed on the way out, no sweep ran
        for email in ["parent@example.com", *(f"w{n}@example.com" for n in range(8)),
                      *(f"s{n}@example.com" for n in range(4))]:
            wait_for_mail(mail_dir, email)
        assert len(mails(mail_dir)) == 13
        assert _count(engine, "SELECT count(*) FROM outbox WHERE attempts > 0") == 0
    finally:
        proxy.flow()
        server.stop()
        engine.dispose()
