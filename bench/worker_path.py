"""The worker half of a paid order, counted in one process: SQL statements and CPU of start_payment and
send_email per order.

    python -m bench.worker_path [orders, default 200]

Places and pays the orders through the Flask test client (their outbox rows are published to a scratch
virtual host nobody consumes), then calls the two tasks directly, one order after the other: every
start_payment, then send_email for each confirmation in the order they were queued (so a run that sends a
batch leaves the following ones nothing to do, as in a worker with a backlog). Counts the statements the
calling thread sends to PostgreSQL (the outbox publisher's thread is not counted) and its CPU time. Unlike
`make bench-orders` these counts do not move with the machine's load; the CPU figure does. Uses its own
scratch database, RabbitMQ virtual host and Redis database (BENCH_NAME, BENCH_REDIS_URL), removed after.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NAME = os.environ.get("BENCH_NAME", "shop_bench_worker_path")
PG = os.environ.get("BENCH_PG_SERVER", "postgresql+psycopg2://postgres@127.0.0.1:5432")
MAIL = Path(tempfile.mkdtemp(prefix="bench-mail-"))
from bench.stack import in_process_env  # noqa: E402

os.environ.update(in_process_env(PG, NAME, MAIL))
WARM_UP = 20

from sqlalchemy import create_engine, event, text  # noqa: E402

from bench.stack import drop_scratch, fresh_database, fresh_vhost, seed_teapot_and_customers  # noqa: E402

CHECKOUT = {"shippingAddress": {"firstName": "B", "lastName": "M", "line1": "1 Road", "city": "Paris",
                                "postalCode": "75001", "country": "FR"}}


def place_and_pay(count: int) -> list[str]:
    """`count` orders placed and paid through the web app; their payment ids."""
    from web import create_app
    from web.auth.tokens import access_token

    app = create_app()
    with app.extensions["shop"].db.session() as session:
        variant, users = seed_teapot_and_customers(session, 8, "path")
        body = {"items": [{"variantId": str(variant.id), "quantity": 1}], **CHECKOUT}
        with app.app_context():
            headers = [{"Authorization": f"Bearer {access_token(u.id, 'customer', mfa=False, session_id=uuid.uuid4())}"}
                       for u in users]
    client, payments = app.test_client(), []
    for n in range(count):
        order = client.post("/api/v1/orders", json=body, headers=headers[n % 8]).json
        client.post(f"/api/v1/orders/{order['id']}/pay", json={"paymentMethod": "sandbox_success"},
                    headers=headers[n % 8])
        payments.append(order["payment"]["id"])
    app.extensions["shop"].relay.close()
    app.extensions["shop"].db.dispose()
    return payments


def confirmations(engine, payments: list[str]) -> list[str]:
    query = text("SELECT m.id::text FROM email_messages m "
                 "JOIN payments p ON p.order_id = (m.context->>'order_id')::uuid "
                 "WHERE p.id = ANY(CAST(:ids AS uuid[])) ORDER BY m.created_at")
    with engine.connect() as conn:
        return list(conn.execute(query, {"ids": payments}).scalars())


def main() -> None:
    from bootstrap import bootstrap

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    shop = bootstrap()
    fresh_database(PG, NAME, os.environ["DATABASE_URL"], os.environ["REDIS_URL"])
    fresh_vhost(NAME)
    engine = create_engine(os.environ["DATABASE_URL"])
    try:
        payments = place_and_pay(count + WARM_UP)
        shop.celery.set_current()
        from tasks.emails import send_email
        from tasks.payments import start_payment

        statements, me = [0], threading.get_ident()

        def counted(*_):
            if threading.get_ident() == me:
                statements[0] += 1
        event.listen(shop.db.engine, "before_cursor_execute", counted)
        for payment_id in payments[:WARM_UP]:
            start_payment(payment_id)
        for message_id in confirmations(engine, payments[:WARM_UP]):
            send_email(message_id)
        rows = []
        for label, task, items in (("start_payment", start_payment, lambda: payments[WARM_UP:]),
                                   ("send_email", send_email, lambda: confirmations(engine, payments[WARM_UP:]))):
            todo = items()
            before, cpu = statements[0], time.process_time()
            outcomes = [task(item) for item in todo]
            cpu = time.process_time() - cpu
            rows.append((label, len(todo), (statements[0] - before) / len(todo), 1000 * cpu / len(todo),
                         sorted(set(outcomes))[:3]))
    finally:
        shop.relay.close(10)
        shop.close()
        engine.dispose()
        drop_scratch(PG, NAME, os.environ["REDIS_URL"])
        shutil.rmtree(MAIL, ignore_errors=True)
    print(f"\nWorker path ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}), {count} orders after {WARM_UP} "
          f"of warm-up, load average (1 min) {os.getloadavg()[0]:.1f}")
    print("| task | runs | SQL statements per order | CPU per order | outcomes |")
    print("|---|---:|---:|---:|---|")
    for label, runs, per, cpu, outcomes in rows:
        print(f"| {label} | {runs} | {per:.2f} | {cpu:.1f} ms | {', '.join(map(str, outcomes))} |")


if __name__ == "__main__":
    main()
