"""The shipping queue: buy labels, poll tracking, keep popular rates warm."""

from __future__ import annotations

import logging
import uuid

from celery import shared_task
from sqlalchemy import select

from integrations.shipping.cache import RateCache, RateQuery
from models.errors import Conflict
from models.orders import actions
from models.orders.machine import SHIPPED
from models.orders.places import destination_of, origin_from, parcel_of
from models.orders.tables import Order, Shipment
from models.users.permissions import SYSTEM
from models import task_names as names
from tasks import runtime, vendors
from tasks.base import ShopTask

log = logging.getLogger(__name__)
LABEL_EXTENSIONS = {"application/pdf": "pdf", "image/gif": "gif", "application/zpl": "zpl"}


@shared_task(base=ShopTask, name=names.BUY_LABEL)
def buy_label(shipment_id: str) -> str:
    """Buy the label, store it, and move the order to shipped; the shipment stays locked meanwhile.

    The lock makes a duplicated delivery wait and then find the label bought.
    """
    settings = runtime.settings()
    with runtime.database().session() as session:
        shipment = session.get(Shipment, uuid.UUID(shipment_id), with_for_update=True)
        if shipment is None or shipment.tracking_number:
            return "already handled"
        order = session.get(Order, shipment.order_id)
        label = vendors.shipping().buy_label(shipment_id, shipment.service, origin_from(settings.SHIP_FROM),
                                             destination_of(order), parcel_of(order))
        key = f"labels/{shipment_id}.{LABEL_EXTENSIONS.get(label.content_type, 'bin')}"
        vendors.storage().put(key, label.content, label.content_type)
        actions.label_bought(session, shipment.id, label.tracking_number, key)
    return label.tracking_number


@shared_task(base=ShopTask, name=names.POLL_TRACKING)
def poll_tracking(batch: int = 200, after: str | None = None) -> int:
    """Beat: ask the carrier about one page of shipped orders (keyset by order id), mark delivered ones
    delivered, and queue the next page, so every shipped order is polled however many there are."""
    query = (select(Shipment.order_id, Shipment.tracking_number).join(Order, Order.id == Shipment.order_id)
             .where(Order.status == SHIPPED).order_by(Shipment.order_id).limit(batch))
    if after is not None:
        query = query.where(Shipment.order_id > uuid.UUID(after))
    with runtime.database().session() as session:
        shipped = session.execute(query).all()
    delivered = 0
    for order_id, tracking_number in shipped:
        if not vendors.shipping().track(tracking_number).delivered:
            continue
        try:
            with runtime.database().session() as session:
                actions.deliver(session, SYSTEM, order_id, "carrier reports delivered")
            delivered += 1
        except Conflict:  # moved meanwhile (a return, staff confirmed delivery): nothing to do
            log.info("tracking: order already moved", extra={"order_id": str(order_id)})
    if len(shipped) == batch:  # a full page: there may be more, in another task so none runs for minutes
        poll_tracking.delay(batch=batch, after=str(shipped[-1].order_id))
    return delivered


def rate_cache() -> RateCache:
    settings = runtime.settings()
    return RateCache(runtime.redis_client(), settings.SHIPPING_RATE_CACHE_TTL, settings.SHIPPING_RATE_RETRY_AFTER)


@shared_task(base=ShopTask, name=names.QUOTE_RATES)
def quote_rates(query: list) -> str:
    """Ask the carrier for the rates a web request found missing, and cache its answer (or refusal)."""
    wanted, cache = RateQuery.from_description(query), rate_cache()
    cached = cache.lookup_quietly(wanted)
    if cached is not None and not cached.unavailable:  # a repeated delivery, or asked twice
        return "already cached"
    entry = cache.fetch(vendors.shipping(), wanted)
    return "unavailable" if entry.unavailable else "refused" if entry.refused else "cached"


@shared_task(base=ShopTask, name=names.REFRESH_RATES)
def refresh_rates() -> int:
    """Beat: re-fetch the most used cached rates before they expire."""
    return rate_cache().refresh_popular(vendors.shipping(), runtime.settings().SHIPPING_RATE_REFRESH_TOP,
                                        expiring_within=3600)


