"""Workers killed with SIGKILL every few seconds while customers pay for orders and a catalog file imports (the
Procfile's two: the money path's tasks in threads, the rest in processes):
one payment and one confirmation per paid order, stock conserved, the import's counts exact.

Mail goes to the SendGrid twin through the `sendgrid` library, so a confirmation whose attempt a kill cut
off is settled as in production: by asking SendGrid's (lagging) activity feed whether it took the message."""

from __future__ import annotations

import os
import random
import signal
import threading

import pytest

from tests.conftest import start_beat, start_worker
from tests.faults.ledger import (TALLIES, Tally, count_events, count_paid_orders, count_stock, scale, settled)
from tests.helpers import bearer, make_user, wait_for
from tests.imports.conftest import drop, rows, scalar
from tests.orders.conftest import ORDERS, place
from tests.twins.sendgrid import SendGridTwin

ORDERS_COUNT = scale(24, 1000)
IMPORT_ROWS = scale(6_000, 200_000)
CHUNK = scale(500, 5_000)
KILL_EVERY = scale(2.0, 4.5)  # seconds from a worker's "ready" to its SIGKILL
MAX_KILLS = scale(5, 40)  # then the last worker is left to finish
# A message killed TASK_DELIVERY_LIMIT times in a row is dead-lettered, so at full size the scan and load
# steps hand over to a continuation (a new message) every 2 s, well within a worker's 4.5 s of life.
TASK_SECONDS = scale(40, 2)
VARIANTS = 5
FEED_DELAY = 0.5  # seconds before the twin's activity feed lists a message it accepted
SEND_TIMEOUT = 5  # the workers' SENDGRID_TIMEOUT
# What the workers wait after a cut-off attempt began before believing the feed: more than a request's
# timeout plus the feed's delay (a timed-out request may still be accepted), with room for a busy machine.
ACCEPTANCE_LAG = 10


def feed(count: int) -> bytes:
    lines = ["sku,product_handle,product_name,description,category_path,price,currency,stock,image_urls,attributes"]
    lines += [f"IMP-{n:07d},imp-{n // 3},Imported {n // 3},,Chaos > G{n % 7},{n % 500}.25,EUR,{n % 90},,"
              for n in range(count)]
    return ("\n".join(lines) + "\n").encode()


# The Procfile's two workers: the money path's tasks in threads (`orders`), the rest in processes (`worker`).
WORKERS = {"orders": {"pool": "threads", "queues": ("payments", "emails", "shipping")},
           "worker": {"pool": "prefork", "queues": ("search", "imports", "maintenance")}}


class Killer(threading.Thread):
    """SIGKILLs both workers (and the one's pool) every `every` seconds and starts new ones, `most` times at
    most."""

    def __init__(self, folder, env: dict, every: float, most: int):
        super().__init__(daemon=True)
        self.folder, self.env, self.every = folder, env, every
        self.workers = self._start("w0")
        self.kills, self.most = 0, most
        self.done = threading.Event()

    def _start(self, name: str) -> list:
        return [start_worker(self.folder / name / kind, **options, **self.env) for kind, options in WORKERS.items()]

    def run(self) -> None:
        while self.kills < self.most and not self.done.wait(self.every):
            for worker in self.workers:
                os.killpg(worker.proc.pid, signal.SIGKILL)
            for worker in self.workers:
                worker.proc.wait(10)
                worker.stop()
            self.kills += 1
            self.workers = self._start(f"w{self.kills}")

    def stop(self) -> None:
        self.done.set()
        self.join(120)


@pytest.mark.timeout(scale(120, 1800))
def test_workers_killed_under_paid_orders_and_an_import(app, make_variant, mail_dir, settings, tmp_path):
    with SendGridTwin(feed_delay=FEED_DELAY, journal=tmp_path / "sendgrid-accepted.jsonl") as sendgrid:
        run_the_case(app, make_variant, mail_dir, tmp_path, sendgrid)


def run_the_case(app, make_variant, mail_dir, tmp_path, sendgrid):
    tally = Tally(f"workers SIGKILLed every {KILL_EVERY:g} s")
    db = app.extensions["shop"].db
    inbox = tmp_path / "inbox"
    env = {"IMPORT_INBOXES": str(inbox), "IMPORT_POLL_INTERVAL": "1", "IMPORT_CHUNK_ROWS": str(CHUNK),
           "STORAGE_LOCAL_DIR": str(tmp_path / "storage"), "SANDBOX_PAYMENT_LATENCY": "0.2",
           "IMPORT_TASK_SECONDS": str(TASK_SECONDS), "EMAIL_PROVIDER": "sendgrid",
           "SENDGRID_API_KEY": sendgrid.api_key, "SENDGRID_HOST": sendgrid.url, "SENDGRID_TIMEOUT": str(SEND_TIMEOUT),
           "EMAIL_ACCEPTANCE_LAG": str(ACCEPTANCE_LAG)}
    with db.session() as session:
        customer = make_user(session, "customer")
    headers = bearer(app, customer)
    stock = ORDERS_COUNT  # enough for every order whichever variant it picks
    initial = {make_variant(stock=stock): stock for _ in range(VARIANTS)}
    beat = start_beat(tmp_path, **env)
    killer = Killer(tmp_path, env, KILL_EVERY, MAX_KILLS)
    paid = []
    try:
        killer.start()
        drop(inbox, "chaos.csv", feed(IMPORT_ROWS))
        client = app.test_client()
        for _ in range(ORDERS_COUNT):
            placed = place(client, headers, random.choice(list(initial)), 1)
            tally.server_errors += placed.status_code >= 500
            if placed.status_code != 201:
                continue
            paying = client.post(f"{ORDERS}/{placed.json['id']}/pay", json={"paymentMethod": "sandbox_success"},
                                 headers=headers)
            tally.server_errors += paying.status_code >= 500
            if paying.status_code == 202:
                paid.append(placed.json["id"])
        # The kills go on while payments, mails and the import are still being worked through.
        wait_for(lambda: killer.kills >= 3, timeout=scale(60, 600), interval=0.2, message="three kills at least")
        wait_for(lambda: settled(db.engine, mail_dir, paid) and scalar(db, "SELECT finished_at FROM import_jobs"),
                 timeout=scale(120, 1800), interval=0.5, message="every payment, mail and the import")
        killer.stop()
    finally:
        killer.stop()
        for worker in killer.workers:
            worker.stop()
        beat.stop()
    found = sum(log.read_text().count("email found sent by an earlier attempt")
                for log in tmp_path.glob("w*/*/worker.log"))
    tally.notes.append(f"{killer.kills} kills; {len(paid)} orders paid; {IMPORT_ROWS} rows imported; "
                       f"{len(sendgrid.accepted)} emails accepted by SendGrid; {len(sendgrid.lookups)} lookups "
                       f"of cut-off attempts, {found} found already sent")
    count_paid_orders(db.engine, mail_dir, paid, tally, subjects=[body["subject"] for body in sendgrid.accepted])
    count_stock(db.engine, initial, tally)
    count_events(app, tally)
    [(status, total, imported, failed)] = rows(db, "SELECT status, rows_total, rows_imported, rows_failed "
                                                   "FROM import_jobs")
    variants = scalar(db, "SELECT count(*) FROM product_variants WHERE sku LIKE 'IMP-%'")
    tally.rows = IMPORT_ROWS
    tally.rows_lost = max(0, IMPORT_ROWS - variants) + max(0, IMPORT_ROWS - imported) + failed
    tally.rows_doubled = max(0, imported - IMPORT_ROWS) + max(0, total - IMPORT_ROWS)
    TALLIES.append(tally)
    assert len(paid) == ORDERS_COUNT and killer.kills >= 3
    assert status == "succeeded" and not tally.problems(), tally
