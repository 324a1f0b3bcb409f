"""Order tables. Status moves only through the order state machine."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (CHAR, BigInteger, CheckConstraint, DateTime, Enum, ForeignKey, Index, String, Text,
                        UniqueConstraint, text)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.catalog.tables import Money
from models.db import Base, Timestamps
from models.users.tables import AddressFields


class OrderStatus(enum.StrEnum):
    """The states of the spec's order state diagram."""

    PENDING = "pending"
    PROCESSING = "processing"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    RETURNED = "returned"
    CANCELLED = "cancelled"


order_status = Enum(OrderStatus, name="order_status", values_callable=lambda e: [m.value for m in e])


class Order(Timestamps, Base):
    __tablename__ = "orders"
    __table_args__ = (CheckConstraint("total >= 0", name="total_not_negative"),
                      Index("ix_orders_created_at", "created_at"))  # the retention purge's scan

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    status: Mapped[OrderStatus] = mapped_column(order_status, server_default=OrderStatus.PENDING.value, index=True)
    currency: Mapped[str] = mapped_column(CHAR(3))
    subtotal: Mapped[Decimal] = mapped_column(Money)
    shipping_total: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    tax_total: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    total: Mapped[Decimal] = mapped_column(Money)
    # reserved -> allocated (paid) -> shipped, or released / restocked: what the lines hold of stock.
    stock_state: Mapped[str] = mapped_column(String(16), server_default="reserved")

    items: Mapped[list[OrderItem]] = relationship(back_populates="order", passive_deletes=True)
    shipping_address: Mapped[ShippingAddress] = relationship(back_populates="order", passive_deletes=True)
    billing_address: Mapped[BillingAddress] = relationship(back_populates="order", passive_deletes=True)
    events: Mapped[list[OrderEvent]] = relationship(
        back_populates="order", passive_deletes=True, order_by="OrderEvent.id")


class OrderItem(Base):
    """One line; name, SKU and price are copied so later catalog edits don't rewrite history."""

    __tablename__ = "order_items"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("products.id", ondelete="SET NULL"), index=True)
    variant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("product_variants.id", ondelete="SET NULL"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    product_name: Mapped[str] = mapped_column(String(255))
    unit_price: Mapped[Decimal] = mapped_column(Money)
    quantity: Mapped[int]
    line_total: Mapped[Decimal] = mapped_column(Money)

    order: Mapped[Order] = relationship(back_populates="items")


class OrderAddress(AddressFields):
    """An address copied onto the order when it is placed."""

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


class ShippingAddress(OrderAddress, Base):
    __tablename__ = "shipping_addresses"

    order: Mapped[Order] = relationship(back_populates="shipping_address")


class BillingAddress(OrderAddress, Base):
    __tablename__ = "billing_addresses"

    order: Mapped[Order] = relationship(back_populates="billing_address")


class OrderEvent(Base):
    """An append-only history row: who or what moved the order, from where to where, and why."""

    __tablename__ = "order_events"
    # INSERT … RETURNING created_at too: real-time messages are built at flush, before any reload.
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(100))
    from_status: Mapped[OrderStatus | None] = mapped_column(order_status)
    to_status: Mapped[OrderStatus | None] = mapped_column(order_status)
    reason: Mapped[str] = mapped_column(Text, server_default="")
    data: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))

    order: Mapped[Order] = relationship(back_populates="events")


class Payment(Timestamps, Base):
    """One attempt to take an order's money through a provider; `reference` is theirs."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("provider", "reference"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(64), server_default="")
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(CHAR(3))
    status: Mapped[str] = mapped_column(String(32), server_default="pending")
    failure_reason: Mapped[str] = mapped_column(Text, server_default="")


class Refund(Timestamps, Base):
    """Money given back on a payment; settled when the provider says so."""

    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("provider", "reference"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(32), server_default="pending")
    reason: Mapped[str] = mapped_column(Text, server_default="")


class Return(Timestamps, Base):
    """A return the customer started; refunded once the goods are received."""

    __tablename__ = "returns"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), unique=True)
    reason: Mapped[str] = mapped_column(Text, server_default="")
    status: Mapped[str] = mapped_column(String(32), server_default="requested")
    received_at: Mapped[datetime | None]


class Shipment(Timestamps, Base):
    """A parcel of an order: the label bought from the carrier and its tracking number."""

    __tablename__ = "shipments"
    __table_args__ = (UniqueConstraint("carrier", "tracking_number"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), unique=True)
    carrier: Mapped[str] = mapped_column(String(32))
    service: Mapped[str] = mapped_column(String(64))
    tracking_number: Mapped[str | None] = mapped_column(String(64))
    label_key: Mapped[str | None] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(32), server_default="label_pending")
    requested_by: Mapped[str] = mapped_column(String(100), server_default="")


class IdempotencyKey(Base):
    """The first answer to a request sent with an `Idempotency-Key`, per caller."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(CHAR(64))
    response_code: Mapped[int]
    response_body: Mapped[dict] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"), index=True)


class WebhookEvent(Base):
    """A provider's event, stored once by its id: a repeat delivery finds it here."""

    __tablename__ = "webhook_events"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(server_default=text("now()"), index=True)
    processed_at: Mapped[datetime | None]


class PendingIndexing(Base):
    """A product whose stock orders changed and whose search document no indexing task has refreshed yet.

    Orders change stock on every checkout; one indexing task per window of time covers every product marked
    in it (see `models.orders.stock.queue_stock_indexing`). `claimed_by`: the task indexing it now; a change
    made meanwhile clears it, so the mark stays for the next window.
    """

    __tablename__ = "search_pending"

    product_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    since: Mapped[datetime] = mapped_column(server_default=text("now()"))
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]


class IndexingWindow(Base):
    """A window of time whose indexing task is queued: the transaction that inserted the row queued it."""

    __tablename__ = "search_windows"

    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
