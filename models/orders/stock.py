"""Stock held by orders: reserve at checkout, release, take out when shipped, put back on return.

Variant rows are locked in id order, so two checkouts that share variants
queue behind each other instead of deadlocking.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from models.catalog.indexing import queue_indexing
from models.catalog.tables import ProductVariant
from models.errors import Conflict, NotFound
from models.orders.tables import Order


def lock_variants(session: Session, variant_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ProductVariant]:
    """The variants, locked FOR UPDATE in a stable order."""
    ids = sorted(set(variant_ids))
    rows = session.scalars(select(ProductVariant).where(ProductVariant.id.in_(ids))
                           .options(joinedload(ProductVariant.product, innerjoin=True))
                           .order_by(ProductVariant.id).with_for_update(of=ProductVariant)).all()
    return {row.id: row for row in rows}


def reserve(session: Session, wanted: Counter) -> dict[uuid.UUID, ProductVariant]:
    """Raise `reserved` by the wanted quantities; 409 naming every variant that is short."""
    variants = lock_variants(session, wanted)
    missing = [str(v) for v in wanted if v not in variants]
    if missing:
        raise NotFound("unknown variants", {"items": {v: ["no such variant"] for v in missing}})
    short = {str(v): [f"only {variants[v].stock - variants[v].reserved} available"]
             for v, quantity in wanted.items() if variants[v].stock - variants[v].reserved < quantity}
    if short:
        raise Conflict("not enough stock", {"items": short})
    for variant_id, quantity in wanted.items():
        variants[variant_id].reserved += quantity
    _changed(session, variants.values())
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
    queue_indexing(session, {variant.product_id for variant in variants})
