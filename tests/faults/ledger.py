"""What a fault did to the books: orders, payments, emails and rows lost, doubled or stuck.

Each fault test fills a `Tally`, asserts it is all zeros, and leaves it in
TALLIES; the fault suite's conftest prints them as one table (`make chaos`).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path

from sqlalchemy import text

from tests.helpers import mails

# `make chaos` sets CHAOS_SCALE=full: the sizes of the issue; `make test` runs the small ones.
FULL = os.environ.get("CHAOS_SCALE") == "full"


def scale(small, full):
    return full if FULL else small


@dataclass
class Tally:
    fault: str
    orders: int = 0
    rows: int = 0
    orders_lost: int = 0
    orders_doubled: int = 0
    payments_lost: int = 0
    payments_doubled: int = 0
    emails_lost: int = 0
    emails_doubled: int = 0
    orders_stuck: int = 0
    stock_off: int = 0
    rows_lost: int = 0
    rows_doubled: int = 0
    events_wrong: int = 0
    server_errors: int = 0
    notes: list[str] = field(default_factory=list)

    COUNTS = ("orders_lost", "orders_doubled", "payments_lost", "payments_doubled", "emails_lost",
              "emails_doubled", "orders_stuck", "stock_off", "rows_lost", "rows_doubled", "events_wrong",
              "server_errors")

    def problems(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.COUNTS if getattr(self, name)}


TALLIES: list[Tally] = []


def table(tallies: list[Tally]) -> str:
    """The tallies as a Markdown table (the one docs/faults.md shows)."""
    names = [f.name for f in fields(Tally) if f.name not in ("fault", "notes")]
    lines = ["| fault | " + " | ".join(name.replace("_", " ") for name in names) + " |",
             "|---|" + "---:|" * len(names)]
    for tally in tallies:
        lines.append(f"| {tally.fault} | " + " | ".join(str(getattr(tally, name)) for name in names) + " |")
    notes = [f"- {tally.fault}: {note}" for tally in tallies for note in tally.notes]
    return "\n".join(lines + ([""] + notes if notes else []))


ORDER_FACTS = text("""
    SELECT o.id, o.status,
           (SELECT count(*) FROM payments p WHERE p.order_id = o.id AND p.status = 'succeeded') AS paid,
           (SELECT count(*) FROM payments p WHERE p.order_id = o.id AND p.status NOT IN ('succeeded', 'failed',
                                                                                          'cancelled')) AS open,
           (SELECT count(*) FROM email_messages e WHERE e.template = 'order_confirmation'
                                                   AND e.context->>'order_id' = o.id::text) AS confirmations
    FROM orders o WHERE o.id = ANY(CAST(:ids AS uuid[]))
""")


def count_paid_orders(engine, mail_dir: Path, order_ids: list, tally: Tally,
                      subjects: list[str] | None = None) -> None:
    """Exactly one succeeded payment, one confirmation row and one mail sent per paid order; none pending.

    The mail sent is read from the sandbox's `mail_dir`, or given as the `subjects` a provider accepted.
    """
    tally.orders = len(order_ids)
    with engine.connect() as conn:
        facts = conn.execute(ORDER_FACTS, {"ids": [str(i) for i in order_ids]}).all()
    if subjects is None:
        subjects = [m["Subject"] or "" for m in mails(mail_dir)]
    sent = Counter(re.search(r"order (\w+) is confirmed", subject).group(1)
                   for subject in subjects if "is confirmed" in subject)
    tally.payments_lost += len(order_ids) - len(facts)
    for order_id, status, paid, open_payments, confirmations in facts:
        number = str(order_id)[:8].upper()
        tally.payments_lost += paid == 0
        tally.payments_doubled += max(0, paid - 1)
        tally.emails_lost += confirmations == 0 or sent[number] == 0
        tally.emails_doubled += max(0, confirmations - 1) + max(0, sent[number] - 1)
        tally.orders_stuck += status == "pending" or open_payments > 0


SETTLED = text("""
    SELECT count(*) FROM orders o WHERE o.id = ANY(CAST(:ids AS uuid[])) AND o.status <> 'pending'
       AND EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.id AND p.status = 'succeeded')
       AND EXISTS (SELECT 1 FROM email_messages e WHERE e.template = 'order_confirmation'
                   AND e.context->>'order_id' = o.id::text AND e.status = 'sent')
""")


def settled(engine, mail_dir: Path, order_ids: list) -> bool:
    """Every paid order has its payment and its confirmation sent (the condition to wait for; counted after)."""
    with engine.connect() as conn:
        return conn.execute(SETTLED, {"ids": [str(i) for i in order_ids]}).scalar() == len(order_ids)


def count_stock(engine, initial: dict, tally: Tally) -> None:
    """initial − held by live orders = available, never negative, for each variant."""
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT v.id, v.stock, v.reserved,
                   COALESCE((SELECT sum(i.quantity) FROM order_items i JOIN orders o ON o.id = i.order_id
                             WHERE i.variant_id = v.id AND o.status NOT IN ('cancelled', 'returned')), 0) AS held
            FROM product_variants v WHERE v.id = ANY(CAST(:ids AS uuid[]))"""),
                            {"ids": [str(i) for i in initial]}).all()
    for variant_id, stock, reserved, held in rows:
        if stock != initial[variant_id] or reserved != held or stock - reserved < 0:
            tally.stock_off += 1


def count_events(app, tally: Tally) -> None:
    """`flask orders verify-events`: orders whose status does not follow from their history."""
    from models.orders.history import disagreements
    from models.orders.machine import legal

    result = app.test_cli_runner().invoke(args=["orders", "verify-events"])
    with app.extensions["shop"].db.session() as session:
        tally.events_wrong += len(disagreements(session, legal))
    tally.events_wrong += result.exit_code != 0 and not tally.events_wrong
