"""Stock held by orders: reserve at checkout, release, take out when shipped, put back on return.

Variant rows are locked in id order, so two checkouts that share variants
queue behind each other instead of deadlocking.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Float, Integer, String, Uuid, column, select, text
from sqlalchemy.orm import Session, joinedload

from models import task_names
from models.catalog.indexing import REFRESH_FACTS
from models.catalog.tables import Money, ProductVariant
from models.errors import Conflict, NotFound
from models.orders.tables import Order
from models.outbox import enqueue
from models.prepared import prepared

# Search indexing of stock changes, coalesced across products by windows of time. A change marks its products
# pending (a mark a task has claimed is unclaimed again, so that task leaves it for the next window) and opens
# the current window unless it is open: only the transaction that inserted the window's row queues its task,
# which runs once the window has ended and indexes every unclaimed mark (tasks.search.index_pending). The
# window is opened after every mark is taken (the count reads them all) and only under a transaction-level
# advisory lock tried without waiting: a checkout never queues on another's uncommitted window row (which it
# would, holding its variants' locks). When the lock is held, its holder is opening the window; if it rolls
# back, the marks wait for the next window or the beat sweep. A DO UPDATE mark stays locked until this
# transaction commits, so a task claiming it waits and then reads this change.
WINDOW_SECONDS = 1
WINDOW_LOCK = 0x5EA1  # the advisory locks' first key: the second is the window's start in seconds
MARK = """
    INSERT INTO search_pending (product_id) SELECT unnest(CAST(:ids AS uuid[]))
    ON CONFLICT (product_id) DO UPDATE SET claimed_by = NULL, claimed_at = NULL
    RETURNING product_id
"""
OPEN_WINDOW = f"""
    INSERT INTO search_windows (starts_at)
    SELECT w.starts_at
    FROM (SELECT date_bin(INTERVAL '{WINDOW_SECONDS} seconds', clock_timestamp(), TIMESTAMPTZ '2000-01-01')
          AS starts_at) w
    WHERE (SELECT count(*) FROM marked) > 0
      AND pg_try_advisory_xact_lock({WINDOW_LOCK}, (extract(epoch FROM w.starts_at)::bigint % 2147483647)::int)
    ON CONFLICT (starts_at) DO NOTHING
    RETURNING extract(epoch FROM starts_at)::float8 AS opened
"""
# The products' variant facts are refreshed in the same statement (one round trip for all; a data-modifying
# WITH runs whether or not it is read). One row: the window this transaction opened (its start, epoch
# seconds), or NULL.
MARK_PENDING = prepared(text(f"WITH refreshed AS ({REFRESH_FACTS.text.strip()}), marked AS ({MARK.strip()}), "
                             f"opened AS ({OPEN_WINDOW.strip()}) SELECT (SELECT opened FROM opened)"))


def marking_ctes():
    """MARK_PENDING as three CTEs (the facts refresh, the marks, the window opened) for a statement that writes
    more: checkout's INSERT … WITH carries them, one round trip fewer under the variants' locks. Bound
    parameter `ids`; `opened` has the column `opened` (one row when this transaction opened the window)."""
    refreshed = text(REFRESH_FACTS.text).columns().cte("refreshed")
    marked = text(MARK).columns(column("product_id", Uuid())).cte("marked")
    opened = text(OPEN_WINDOW).columns(column("opened", Float())).cte("opened")
    return refreshed, marked, opened


def lock_variants(session: Session, variant_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ProductVariant]:
    """The variants, locked FOR UPDATE in a stable order."""
    ids = sorted(set(variant_ids))
    rows = session.scalars(select(ProductVariant).where(ProductVariant.id.in_(ids))
                           .options(joinedload(ProductVariant.product, innerjoin=True))
                           .order_by(ProductVariant.id).with_for_update(of=ProductVariant)).all()
    return {row.id: row for row in rows}


# Checkout's reservation in one round trip: lock the wanted variants in id order (so checkouts sharing
# variants queue instead of deadlocking), read what the order copies from them, and raise `reserved` only
# when every one exists and has enough (a short checkout rolls back anyway; this spares it the writes).
# The UPDATE re-reads each row it changes at its newest version (the lock above already waited for it).
RESERVE = prepared(text("""
    WITH wanted AS (SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:quantities AS int[])) AS w(id, quantity)),
    locked AS MATERIALIZED (
        SELECT v.id, v.product_id, v.sku, v.price, v.currency, v.stock - v.reserved AS available, w.quantity
        FROM product_variants v JOIN wanted w ON w.id = v.id
        ORDER BY v.id FOR UPDATE OF v),
    fits AS (SELECT count(*) = cardinality(CAST(:ids AS uuid[])) AND coalesce(bool_and(available >= quantity), false)
             AS ok FROM locked),
    reserved AS (UPDATE product_variants v SET reserved = v.reserved + l.quantity FROM locked l, fits
                 WHERE v.id = l.id AND fits.ok RETURNING v.id)
    SELECT l.id, l.product_id, l.sku, l.price, l.currency, l.available, p.name,
           (SELECT count(*) FROM reserved) AS changed
    FROM locked l JOIN products p ON p.id = l.product_id
""").columns(id=Uuid(), product_id=Uuid(), sku=String(), price=Money, currency=String(), available=Integer(),
             name=String(), changed=Integer()))


@dataclass(frozen=True, slots=True)
class Reserved:
    """What an order line copies from its variant, read under the variant's lock."""

    id: uuid.UUID
    product_id: uuid.UUID
    sku: str
    price: Decimal
    currency: str
    available: int
    product_name: str


def reserve(session: Session, wanted: Counter, index: bool = True) -> dict[uuid.UUID, Reserved]:
    """Raise `reserved` by the wanted quantities; 404 naming unknown variants, 409 naming short ones.

    `index=False`: the caller marks the products for indexing itself (`marking_ctes`, `queue_window`).
    """
    ids = list(wanted)
    rows = session.connection().execute(RESERVE, {"ids": [str(v) for v in ids],
                                                  "quantities": [wanted[v] for v in ids]}).all()
    variants = {row.id: Reserved(row.id, row.product_id, row.sku, row.price, row.currency, row.available, row.name)
                for row in rows}
    missing = [str(v) for v in wanted if v not in variants]
    if missing:
        raise NotFound("unknown variants", {"items": {v: ["no such variant"] for v in missing}})
    short = {str(v): [f"only {variants[v].available} available"]
             for v, quantity in wanted.items() if variants[v].available < quantity}
    if short:
        raise Conflict("not enough stock", {"items": short})
    if index:
        queue_stock_indexing(session, {variant.product_id for variant in variants.values()})
    return variants


def _order_quantities(order: Order) -> Counter:
    wanted = Counter()
    for item in order.items:
        if item.variant_id is not None:
            wanted[item.variant_id] += item.quantity
    return wanted


def _apply(session: Session, order: Order, reserved: int, stock: int) -> None:
    wanted = _order_quantities(order)
    variants = lock_variants(session, wanted)
    for variant_id, quantity in wanted.items():
        variant = variants.get(variant_id)
        if variant is None:  # deleted since: nothing left to hold
            continue
        variant.stock += stock * quantity
        variant.reserved = max(0, variant.reserved + reserved * quantity)
    _changed(session, variants.values())


def release(session: Session, order: Order) -> None:
    """Give back what the order reserved or had allocated (it never left the shelf)."""
    _apply(session, order, reserved=-1, stock=0)
    order.stock_state = "released"


def take_out(session: Session, order: Order) -> None:
    """The items left the warehouse: lower both stock and reserved."""
    _apply(session, order, reserved=-1, stock=-1)
    order.stock_state = "shipped"


def restock(session: Session, order: Order) -> None:
    """Returned goods are back on the shelf."""
    _apply(session, order, reserved=0, stock=1)
    order.stock_state = "restocked"


def _changed(session: Session, variants: Iterable[ProductVariant]) -> None:
    session.flush()
    queue_stock_indexing(session, {variant.product_id for variant in variants})


def queue_stock_indexing(session: Session, product_ids: Iterable[uuid.UUID | str]) -> None:
    """Like `queue_indexing`, coalesced across products: one task for every product marked in a window of time.

    The products' variant facts are refreshed in this transaction as always; an `index_pending` task goes
    through the outbox only when this transaction opened the current window, so at a hundred checkouts a
    second over many products the worker runs about one indexing task a second instead of one per order.
    """
    ids = sorted({str(product_id) for product_id in product_ids})
    if ids:
        queue_window(session, session.execute(MARK_PENDING, {"ids": ids}).scalar())


def queue_window(session: Session, opened: float | None) -> None:
    """The indexing task of the window this transaction opened (`opened`, its start; none if None)."""
    if opened is not None:
        enqueue(session, task_names.INDEX_PENDING, window=opened)
