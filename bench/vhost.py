"""What a test run's RabbitMQ virtual host costs the broker: time to be ready, file handles, and reuse.

    python -m bench.vhost            (BENCH_BROKER=amqp://guest:guest@127.0.0.1:5672, needs rabbitmqctl)

Creates `<prefix>_fresh` with the suite's queues (six task queues, six dead-letter queues, Celery's 28
delayed-delivery queues), declares and purges them again as a reused vhost would, then deletes it;
the same with the delayed-delivery queues classic; and, as the bare baseline, a vhost with no queue.
Every vhost it makes is deleted, also on failure.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import replace

from kombu import Connection
from kombu.transport.native_delayed_delivery import declare_native_delayed_delivery_exchanges_and_queues

import celeryconfig
from settings import Settings

BROKER = os.environ.get("BENCH_BROKER", "amqp://guest:guest@127.0.0.1:5672")
PREFIX = os.environ.get("BENCH_VHOST_PREFIX", f"bench_vhost_{os.getpid()}")


def ctl(*args: str, timeout: float = 120) -> str:
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True,
                          timeout=timeout).stdout


def handles_used() -> int:
    out = ctl("eval", "file_handle_cache:info([total_used]).")
    return int(re.search(r"total_used,(\d+)", out).group(1))


def declare_all(url: str, settings: Settings, delayed: str | None) -> None:
    queues = celeryconfig.make_task_queues(settings) + celeryconfig.make_dead_letter_queues(settings)
    with Connection(url) as conn:
        channel = conn.default_channel
        for queue in queues:
            queue.bind(channel).declare()
        if delayed:
            declare_native_delayed_delivery_exchanges_and_queues(conn, delayed)


def purge_all(url: str, settings: Settings) -> None:
    queues = celeryconfig.make_task_queues(settings) + celeryconfig.make_dead_letter_queues(settings)
    with Connection(url) as conn:
        channel = conn.default_channel
        for queue in queues:
            queue.bind(channel).declare()
            channel.queue_purge(queue.name)


def measure(name: str, settings: Settings, task_queues: bool, delayed: str | None) -> dict:
    vhost = f"{PREFIX}_{name}"
    url = f"{BROKER}/{vhost}"
    before = handles_used()
    started = time.monotonic()
    ctl("add_vhost", vhost)
    ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        if task_queues:
            declare_all(url, settings, delayed)
        else:
            with Connection(url) as conn:
                conn.connect()
        ready = time.monotonic() - started
        held = handles_used() - before
        started = time.monotonic()
        if task_queues:
            purge_all(url, settings)
        reuse = time.monotonic() - started
    finally:
        started = time.monotonic()
        ctl("delete_vhost", vhost)
        deleted = time.monotonic() - started
    return {"case": name, "ready": ready, "reuse": reuse, "delete": deleted, "handles": held,
            "left": handles_used() - before}


def main() -> None:
    settings = replace(Settings.from_env(), TASK_QUEUE_TYPE="quorum")
    results = [measure("bare", settings, False, None), measure("quorum", settings, True, "quorum"),
               measure("classic_delayed", settings, True, "classic")]
    base = results[0]["ready"] or 1e-9
    load = os.getloadavg()[0]
    print(f"date {time.strftime('%Y-%m-%d %H:%M')} UTC, load average {load:.2f}, "
          f"limit {ctl('eval', 'file_handle_cache:info([total_limit]).').strip()}")
    print(f"{'vhost':<34}{'ready s':>9}{'x bare':>8}{'reuse+purge s':>15}{'delete s':>10}{'handles':>9}{'left':>6}")
    labels = {"bare": "bare (no queues)", "quorum": "12 quorum + 28 quorum delayed",
              "classic_delayed": "12 quorum + 28 classic delayed"}
    for row in results:
        print(f"{labels[row['case']]:<34}{row['ready']:>9.2f}{row['ready'] / base:>8.1f}{row['reuse']:>15.2f}"
              f"{row['delete']:>10.2f}{row['handles']:>9}{row['left']:>6}")


if __name__ == "__main__":
    main()
