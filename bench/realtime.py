"""Real-time benchmark: idle connections per gateway process, and commit-to-owner latency under payments.

    make bench-realtime [BENCH_ARGS="--idle 10000 --rate 50 --seconds 20"]

Runs `python -m web.realtime` against a scratch database and Redis database,
then:

1. opens `--idle` authenticated connections (one user each) and reads the
   gateway's resident memory before and after;
2. keeping them open, pays pending orders at `--rate` orders per second for
   `--seconds` (the payment outcome as the payments task applies it:
   `models.orders.actions.payment_outcome`, one transaction per order), each
   order's owner connected, and times every order's `processing` event from
   the moment its transaction committed to its arrival at the owner;
3. measures, in the same run, a bare Redis PUBLISH → subscriber round trip
   (the floor under any pub/sub delivery) for the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NAME = os.environ.get("BENCH_NAME", "shop_bench_realtime")
PG = os.environ.get("BENCH_PG_SERVER", "postgresql+psycopg2://postgres@127.0.0.1:5432")
ENV = {"APP_ENV": "development", "LOG_LEVEL": "WARNING", "DATABASE_URL": f"{PG}/{NAME}",
       "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6"), "FULFILLMENT_EMAIL": "",
       "DATABASE_POOL_SIZE": "8"}
os.environ.update(ENV)

import jwt  # noqa: E402
import redis  # noqa: E402
from sqlalchemy import event  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from bench.stack import free_port, fresh_database, seed_teapot_and_customers  # noqa: E402


def raise_file_limit() -> int:
    """Each connection is a file on both ends: lift the soft limit to the hard one (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1_048_576
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return wanted


def prepare_database() -> None:
    fresh_database(PG, NAME, ENV["DATABASE_URL"], ENV["REDIS_URL"])


def token(secret: str, user_id: str, ttl: int = 7200) -> str:
    now = int(time.time())
    return jwt.encode({"sub": user_id, "role": "customer", "mfa": False, "sid": str(uuid.uuid4()),
                       "jti": str(uuid.uuid4()), "type": "access", "fresh": False, "iat": now, "nbf": now,
                       "exp": now + ttl}, secret, algorithm="HS256")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


# --- idle connections (held by a child process whose loop keeps answering the gateway's pings) ---------

async def open_idle(url: str, secret: str, count: int, parallel: int = 200) -> list:
    gate = asyncio.Semaphore(parallel)
    sockets = []

    async def one() -> None:
        async with gate:
            ws = await connect(url, compression=None, open_timeout=120, max_queue=4)
            await ws.send(json.dumps({"type": "auth", "token": token(secret, str(uuid.uuid4()))}))
            ready = json.loads(await ws.recv())
            assert ready["type"] == "ready", ready
            sockets.append(ws)

    await asyncio.gather(*(one() for _ in range(count)))
    return sockets


def hold_idle(url: str, secret: str, count: int, pipe) -> None:
    """Child process: open `count` connections, report, and keep them until told to stop."""
    async def run():
        began = time.monotonic()
        sockets = await open_idle(url, secret, count)
        pipe.send((len(sockets), time.monotonic() - began))
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        await asyncio.gather(*(ws.close() for ws in sockets))
    asyncio.run(run())


# --- orders being paid -------------------------------------------------------------------------------

def seed_orders(db, count: int) -> list[tuple[str, str]]:
    """`count` pending orders of `count` customers, each with a payment in flight: (user id, payment id)."""
    from models.orders import actions
    from models.users.permissions import Actor
    from models.users.tables import Role

    with db.session() as session:
        variant, users = seed_teapot_and_customers(session, count, "rt")
        variant_id, user_ids = variant.id, [u.id for u in users]
    address = {"first_name": "A", "last_name": "B", "line1": "1 Road", "city": "X", "postal_code": "1",
               "country": "GB"}
    pairs = []
    for user_id in user_ids:
        actor = Actor(role=Role.CUSTOMER, user_id=user_id)
        with db.session() as session:
            order = actions.checkout(session, actor, [{"variant_id": variant_id, "quantity": 1}], address, None,
                                     "sandbox")
            payment = actions.request_payment(session, actor, order.id, "sandbox_success")
            pairs.append((str(user_id), str(payment.id)))
    return pairs


def watch_owners(url: str, secret: str, users: list[str], pipe) -> None:
    """Child process: connect every owner, report, then send back when each one's `processing` event arrived."""
    arrived: dict[str, float] = {}

    async def connect_owner(user: str):
        ws = await connect(url, compression=None, open_timeout=120)
        await ws.send(json.dumps({"type": "auth", "token": token(secret, user)}))
        while json.loads(await ws.recv())["type"] != "ready":
            pass
        return ws

    async def read(user: str, ws) -> None:
        async for raw in ws:
            if json.loads(raw).get("toStatus") == "processing":
                arrived[user] = time.time()
                return

    async def run():
        gate = asyncio.Semaphore(200)

        async def gated(user):
            async with gate:
                return await connect_owner(user)
        sockets = await asyncio.gather(*(gated(user) for user in users))
        pipe.send("ready")
        readers = asyncio.gather(*(read(user, ws) for user, ws in zip(users, sockets, strict=True)))
        with contextlib.suppress(TimeoutError):  # the ones that never arrived are counted as lost
            await asyncio.wait_for(readers, 120)
        pipe.send(arrived)
        await asyncio.gather(*(ws.close() for ws in sockets))
    asyncio.run(run())


def pay_at_rate(db, pairs: list[tuple[str, str]], rate: float) -> dict[str, float]:
    """Apply each payment's success at `rate` per second; returns commit time by owner."""
    from models.orders import actions

    committed: dict[str, float] = {}

    def pay(user_id: str, payment_id: str) -> None:
        with db.session() as session:
            session.info["owner"] = user_id
            actions.payment_outcome(session, uuid.UUID(payment_id), True, f"pi_bench_{payment_id}")

    # Registered before the broadcaster's hook, so it stamps the commit before the event is published.
    def stamp(session) -> None:
        if "owner" in session.info:
            committed[session.info.pop("owner")] = time.time()  # wall clock: the owners are another process

    event.listen(db.sessionmaker, "after_commit", stamp, insert=True)
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        for n, (user_id, payment_id) in enumerate(pairs):
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(pay, user_id, payment_id)
    return committed


def bare_pubsub(url: str, count: int = 2000) -> list[float]:
    """PUBLISH → a subscriber's receipt through the same Redis, one at a time (ms)."""
    client = redis.Redis.from_url(url)
    subscriber = client.pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe("bench:bare")
    delays = []
    for n in range(count):
        sent = time.monotonic()
        client.publish("bench:bare", str(n))
        while subscriber.get_message(timeout=1) is None:
            pass
        delays.append((time.monotonic() - sent) * 1000)
    subscriber.close()
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    files = raise_file_limit()

    from models.db import Database
    from models.realtime import Broadcaster
    from settings import get_settings

    settings = get_settings()
    prepare_database()
    port = free_port()
    logs = Path(tempfile.mkdtemp(prefix="bench-realtime-"))
    gateway = subprocess.Popen([sys.executable, "-m", "web.realtime"], cwd=ROOT,
                               env={**os.environ, "WS_PORT": str(port), "LOG_LEVEL": "INFO"},
                               stdout=(logs / "gateway.log").open("ab"), stderr=subprocess.STDOUT)
    url = f"ws://127.0.0.1:{port}/ws"
    try:
        deadline = time.monotonic() + 30
        while "listening for real-time events" not in (logs / "gateway.log").read_text():
            if time.monotonic() > deadline or gateway.poll() is not None:
                raise RuntimeError(f"the gateway did not start; see {logs / 'gateway.log'}")
            time.sleep(0.1)
        base = rss_mb(gateway.pid)

        idle_pipe, idle_end = multiprocessing.Pipe()
        idle = multiprocessing.Process(target=hold_idle, args=(url, settings.SECRET_KEY, args.idle, idle_end))
        idle.start()
        opened, opened_in = idle_pipe.recv()
        held = rss_mb(gateway.pid)

        db = Database(settings.DATABASE_URL, 8)
        orders = int(args.rate * args.seconds)
        pairs = seed_orders(db, orders)
        Broadcaster(db, redis.Redis.from_url(settings.REDIS_URL))
        owners_pipe, owners_end = multiprocessing.Pipe()
        owners = multiprocessing.Process(target=watch_owners, args=(url, settings.SECRET_KEY,
                                                                    [user for user, _ in pairs], owners_end))
        owners.start()
        assert owners_pipe.recv() == "ready"
        began = time.monotonic()
        committed = pay_at_rate(db, pairs, args.rate)
        paid_in = time.monotonic() - began
        arrived = owners_pipe.recv()
        owners.join(60)
        delays = [(arrived[u] - committed[u]) * 1000 for u in committed if u in arrived]
        peak = rss_mb(gateway.pid)
        bare = bare_pubsub(settings.REDIS_URL)
        idle_pipe.send("stop")
        idle.join(60)

        print(f"\nidle connections: {opened:,} opened in {opened_in:.1f} s (file limit {files:,})")
        print("| gateway memory | RSS MB |\n|---|---|")
        print(f"| started, no connections | {base:.0f} |")
        print(f"| {opened:,} idle authenticated connections | {held:.0f} "
              f"({(held - base) * 1024 / max(1, opened):.1f} KiB each) |")
        print(f"| plus {len(pairs):,} owners, after the payments | {peak:.0f} |")
        print(f"\norders paid: {len(committed):,} in {paid_in:.1f} s = {len(committed) / paid_in:.1f}/s; "
              f"events delivered: {len(delays):,}; lost: {len(pairs) - len(delays)}")
        print("| path | p50 ms | p95 ms | p99 ms | max ms | ratio of p95 to bare |\n|---|---|---|---|---|---|")
        print(f"| bare: Redis PUBLISH → subscriber | {percentile(bare, 50):.2f} | {percentile(bare, 95):.2f} | "
              f"{percentile(bare, 99):.2f} | {max(bare):.2f} | 1.0 |")
        print(f"| commit → owner's WebSocket | {percentile(delays, 50):.2f} | {percentile(delays, 95):.2f} | "
              f"{percentile(delays, 99):.2f} | {max(delays):.2f} | "
              f"{percentile(delays, 95) / percentile(bare, 95):.0f} |")
        print(f"\nload average (1 min) at the end: {os.getloadavg()[0]:.1f}; logs in {logs}")
        db.dispose()
    finally:
        gateway.terminate()
        gateway.wait(30)


if __name__ == "__main__":
    main()
