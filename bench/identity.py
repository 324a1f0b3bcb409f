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

from alembic import command  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from models.crypto import KeyRing  # noqa: E402
from models.users.key_access import KeyAccess  # noqa: E402
from settings import DEV_PII_KEYS, Settings  # noqa: E402
from web.cli import alembic_config, ensure_database  # noqa: E402

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


def interleaved(calls: dict, rounds: int = ROUNDS) -> dict[str, float]:
    """Median microseconds per call of each of `calls`, taken in turn, so drifting load hits all alike."""
    for fn in calls.values():
        for _ in range(min(50, rounds)):
            fn()
    samples = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            started = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) * 1e6 for name, values in samples.items()}


def main() -> None:
    ensure_database(os.environ["DATABASE_URL"])
    command.upgrade(alembic_config(os.environ["DATABASE_URL"]), "head")
    from tests.helpers import bearer, make_user
    from web import create_app

    app = create_app(dataclasses.replace(Settings.from_env()))
    rt = app.extensions["shop"]
    with rt.db.session() as session:
        session.execute(text("TRUNCATE users, api_keys, security_events CASCADE"))
        admin = make_user(session, "admin")
        session.expunge(admin)
    client = app.test_client()
    token = bearer(app, admin)
    key = client.post("/api/v1/api-keys", headers=token, json={"name": "bench", "scopes": ["users:view_all"]}).json
    url = "/api/v1/users/me/permissions"
    ring = KeyRing.parse(DEV_PII_KEYS)
    sealed = ring.encrypt(VALUE)

    api_key = {"X-API-Key": key["key"]}
    callers = interleaved({
        "GET /healthz, outside the API (baseline)": lambda: client.get("/healthz"),
        "GET permissions, guest (rate limit only)": lambda: client.get(url),
        "GET permissions, bearer token": lambda: client.get(url, headers=token),
        "GET permissions, API key": lambda: client.get(url, headers=api_key),
    })
    rows = [*callers.items(),
            ("POST login (argon2id)", timed(lambda: client.post("/api/v1/auth/login", json={
                "email": admin.email, "password": "Passw0rd!Long"}), 20))]
    guest = callers["GET permissions, guest (rate limit only)"]
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
    print("\n| request | median µs | × baseline | × guest |\n|---|---|---|---|")
    for name, micros in rows:
        print(f"| {name} | {micros:,.1f} | {micros / rows[0][1]:.2f} | {micros / guest:.2f} |")
    print(f"\nAPI-key usage flush: {flushed:,} counted uses of one key added to its row in {flush_ms:.1f} ms")
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
