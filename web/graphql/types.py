"""The GraphQL types: read-only views of products, categories, the caller, orders and import jobs."""

from __future__ import annotations

import enum
from datetime import datetime
import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from models.catalog.money import format_price


def _money(value) -> str | None:
    return None if value is None else format_price(value)


@strawberry.type
class CategoryRef:
    id: strawberry.ID
    name: str
    path: str


@strawberry.type
class Variant:
    id: strawberry.ID
    sku: str
    currency: str
    stock: int
    reserved: int
    attributes: JSON

    @strawberry.field(description='A decimal string such as "12.50".')
    def price(self) -> str:
        return format_price(self.price)


@strawberry.type
class Image:
    id: strawberry.ID
    content_type: str
    alt_text: str
    position: int

    @strawberry.field
    def url(self, info: Info) -> str:
        return info.context.storage.url(self.storage_key)


@strawberry.type
class Product:
    id: strawberry.ID
    handle: str
    name: str
    description: str
    attributes: JSON
    category: CategoryRef | None
    variants: list[Variant]
    images: list[Image]
    created_at: datetime
    updated_at: datetime


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class ProductEdge:
    node: Product
    cursor: str | None = strawberry.field(description="Pass as `after` to continue after this product "
                                                      "(null for search results except the last).")


@strawberry.type
class ProductConnection:
    edges: list[ProductEdge]
    page_info: PageInfo

    @strawberry.field(description="The products of the page without the edges around them.")
    def nodes(self) -> list[Product]:
        return [edge.node for edge in self.edges]


@strawberry.enum
class ProductSort(enum.Enum):
    NEWEST = "newest"
    OLDEST = "oldest"
    NAME = "name"
    NAME_DESC = "-name"
    PRICE = "price"
    PRICE_DESC = "-price"
    RELEVANCE = "relevance"


@strawberry.type
class Category:
    id: strawberry.ID
    name: str
    path: str
    parent_id: strawberry.ID | None
    children: list[Category]


@strawberry.type
class Me:
    id: strawberry.ID
    email: str
    first_name: str
    last_name: str
    role: str
    is_verified: bool
    created_at: datetime


@strawberry.type
class OrderItem:
    product_id: strawberry.ID | None
    variant_id: strawberry.ID | None
    sku: str
    product_name: str
    quantity: int

    @strawberry.field
    def unit_price(self) -> str:
        return _money(self.unit_price)

    @strawberry.field
    def line_total(self) -> str:
        return _money(self.line_total)


@strawberry.type
class OrderEvent:
    id: int
    kind: str
    actor: str
    reason: str
    data: JSON
    created_at: datetime

    @strawberry.field
    def from_status(self) -> str | None:
        return str(self.from_status) if self.from_status else None

    @strawberry.field
    def to_status(self) -> str | None:
        return str(self.to_status) if self.to_status else None


@strawberry.type
class Shipment:
    id: strawberry.ID
    carrier: str
    service: str
    status: str
    tracking_number: str | None


@strawberry.type
class Order:
    id: strawberry.ID
    currency: str
    items: list[OrderItem]
    created_at: datetime

    @strawberry.field
    def status(self) -> str:
        return str(self.status)

    @strawberry.field
    def subtotal(self) -> str:
        return _money(self.subtotal)

    @strawberry.field
    def shipping_total(self) -> str:
        return _money(self.shipping_total)

    @strawberry.field
    def tax_total(self) -> str:
        return _money(self.tax_total)

    @strawberry.field
    def total(self) -> str:
        return _money(self.total)

    @strawberry.field(description="The order's history, oldest first.")
    def events(self, info: Info) -> list[OrderEvent]:
        return info.context.loaders.order_events.load(self.id)

    @strawberry.field(description="The parcel, once a label was asked for.")
    def shipment(self, info: Info) -> Shipment | None:
        return info.context.loaders.shipments.load(self.id)


@strawberry.type
class OrderConnection:
    nodes: list[Order]
    page_info: PageInfo


@strawberry.type
class ImportError:
    row: int
    column: str
    value: str
    message: str


@strawberry.type
class ImportJob:
    id: strawberry.ID
    status: str
    format: str | None
    filename: str
    inbox: str
    message: str
    rows_total: int | None
    rows_imported: int
    rows_failed: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @strawberry.field
    def progress(self) -> float:
        done = self.rows_imported + self.rows_failed
        if self.rows_total:
            return round(min(1.0, done / self.rows_total), 4)
        return 1.0 if self.finished_at else 0.0

    @strawberry.field(description="The first rejected cells, in row order.")
    def errors(self, info: Info, first: int = 20) -> list[ImportError]:
        from imports.reports import error_rows

        first = max(1, min(first, 100))
        return [ImportError(row=row, column=column, value=value, message=message)
                for row, column, value, message in error_rows(info.context.session, self.id, first)]


@strawberry.type
class ImportJobConnection:
    nodes: list[ImportJob]
    page_info: PageInfo


def page_info(next_cursor: str | None) -> PageInfo:
    return PageInfo(has_next_page=next_cursor is not None, end_cursor=next_cursor)
