"""What identity costs per request: guest vs bearer token vs API key, and PII encryption per value.

The three callers' requests are taken in turn (guest, bearer, key, guest, ...)
so the machine's drifting load weighs on each alike; the table gives each
median against the bare baseline and against the guest's.

Runs in-process against the real PostgreSQL and Redis (a scratch database
and Redis db 14), with Flask's test client so only our code is timed, and
prints a table with each figure's ratio to a bare baseline measured in the
same run. `make bench-identity` runs it.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PG = os.environ.get("BENCH_PG_SERVER", "postgresql+psycopg2://postgres@127.0.0.1:5432")
DB = "shop_bench_identity"
os.environ.update({"DATABASE_URL": f"{PG}/{DB}", "REDIS_URL": os.environ.get("BENCH_REDIS_URL",
                                                                             "redis://127.0.0.1:6379/14"),
                   "RATE_LIMIT_DEFAULT": "10000000 per minute", "RATE_LIMIT_AUTH": "10000000 per minute",
                   "LOG_LEVEL": "WARNING"})

from sqlalchemy import create_engine, text  # noqa: E402

from bench.stack import interleaved  # noqa: E402
from models.crypto import KeyRing  # noqa: E402
from models.users.key_access import KeyAccess  # noqa: E402
from settings import DEV_PII_KEYS, Settings  # noqa: E402
from web.cli import ensure_database  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2000"))
VALUE = "12 St James's Square"


def timed(fn, rounds: int = ROUNDS) -> float:
    """Median microseconds per call over `rounds` calls (after a warm-up)."""
    for _ in range(min(50, rounds)):
        fn()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def main() -> None:
    from bench.stack import migrate, seed_teapot_and_customers

    ensure_database(os.environ["DATABASE_URL"])
    migrate(os.environ["DATABASE_URL"])
    from tests.helpers import bearer, make_user
    from web import create_app

    app = create_app(dataclasses.replace(Settings.from_env()))
    rt = app.extensions["shop"]
    with rt.db.session() as session:
        session.execute(text("TRUNCATE users, api_keys, security_events, products CASCADE"))
        admin = make_user(session, "admin")
        variant, [customer] = seed_teapot_and_customers(session, 1, "bench-identity-")
        session.expunge_all()
    client = app.test_client()
    token, customer_token = bearer(app, admin), bearer(app, customer)
    key = client.post("/api/v1/api-keys", headers=token, json={"name": "bench", "scopes": ["users:view_all"]}).json
    reader = client.post("/api/v1/api-keys", headers=token, json={"name": "bench-catalog",
                                                                   "scopes": ["products:view"]}).json
    url, detail = "/api/v1/users/me/permissions", f"/api/v1/products/{variant.product_id}"
    ring = KeyRing.parse(DEV_PII_KEYS)
    sealed = ring.encrypt(VALUE)

    api_key, reader_key = {"X-API-Key": key["key"]}, {"X-API-Key": reader["key"]}
    assert client.get(detail).status_code == 200  # rendered once, then served from the shared page cache
    callers = interleaved({
        "GET /healthz, outside the API (baseline)": lambda: client.get("/healthz"),
        "GET permissions, guest (rate limit only)": lambda: client.get(url),
        "GET permissions, bearer token": lambda: client.get(url, headers=token),
        "GET permissions, API key": lambda: client.get(url, headers=api_key),
        "GET product detail (cached), guest": lambda: client.get(detail),
        "GET product detail (cached), customer's bearer token": lambda: client.get(detail, headers=customer_token),
        "GET product detail (cached), API key (products:view)": lambda: client.get(detail, headers=reader_key),
    }, ROUNDS)
    guest = callers["GET permissions, guest (rate limit only)"]
    guest_detail = callers["GET product detail (cached), guest"]
    rows = [(name, micros, guest_detail if "detail" in name else guest) for name, micros in callers.items()]
    access = KeyAccess(rt.redis)
    started = time.perf_counter()
    flushed = access.flush_usage(rt.db.session)
    flush_ms = (time.perf_counter() - started) * 1e3
    crypto_rows = [
        ("UTF-8 encode + decode (baseline)", timed(lambda: VALUE.encode().decode(), ROUNDS * 5)),
        ("AES-256-GCM encrypt", timed(lambda: ring.encrypt(VALUE), ROUNDS * 5)),
        ("AES-256-GCM decrypt", timed(lambda: ring.decrypt(sealed), ROUNDS * 5)),
    ]
    print(f"{ROUNDS:,} requests of each kind, taken in turn; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} at the end")
    login = timed(lambda: client.post("/api/v1/auth/login", json={"email": admin.email,
                                                                   "password": "Passw0rd!Long"}), 20)
    print("\n| request | wall µs | × baseline | × guest (same request) | CPU µs | × baseline | × guest |\n"
          "|---|---|---|---|---|---|---|")
    (base_wall, base_cpu) = rows[0][1]
    for name, (wall, cpu), (guest_wall, guest_cpu) in rows:
        print(f"| {name} | {wall:,.0f} | {wall / base_wall:.2f} | {wall / guest_wall:.2f} | {cpu:,.0f} | "
              f"{cpu / base_cpu:.2f} | {cpu / guest_cpu:.2f} |")
    print(f"| POST login (argon2id), wall | {login:,.0f} | {login / base_wall:.0f} | | | | |")
    print(f"\nAPI-key usage flush: {flushed:,} counted uses of two keys added to their rows in {flush_ms:.1f} ms")
    print("\n| PII value | median µs | × baseline |\n|---|---|---|")
    for name, micros in crypto_rows:
        print(f"| {name} | {micros:,.1f} | {micros / crypto_rows[0][1]:.2f} |")
    rt.db.dispose()
    engine = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)'))
    engine.dispose()


if __name__ == "__main__":
    main()
