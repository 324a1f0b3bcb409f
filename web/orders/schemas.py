"""Request and response bodies of /orders (camelCase on the wire)."""

from __future__ import annotations

from marshmallow import fields, validate

from models.orders.tables import OrderStatus
from web.schemas import CamelSchema, PostalAddressSchema, Trimmed, Int, Money, UtcDateTime, QueryInt, utc_text


# Declared so that the document (and the fuzz gate) checks what is sent.
STATUS = {"type": "string", "enum": [str(status) for status in OrderStatus]}
NULLABLE_STATUS = {**STATUS, "nullable": True, "enum": [*STATUS["enum"], None]}

class LineSchema(CamelSchema):
    variant_id = fields.UUID(required=True)
    quantity = Int(required=True, validate=validate.Range(1, 1000))


class CheckoutSchema(CamelSchema):
    items = fields.List(fields.Nested(LineSchema), required=True, validate=validate.Length(1, 100))
    shipping_address = fields.Nested(PostalAddressSchema, required=True)
    billing_address = fields.Nested(PostalAddressSchema, load_default=None, allow_none=True)


class ItemOutSchema(CamelSchema):
    # Null once the product or variant is deleted: the order keeps its sku, name and prices.
    variant_id = fields.UUID(allow_none=True)
    product_id = fields.UUID(allow_none=True)
    sku = fields.String()
    product_name = fields.String()
    unit_price = Money()
    quantity = Int()
    line_total = Money()


class PaymentOutSchema(CamelSchema):
    id = fields.UUID()
    provider = fields.String()
    status = fields.String()
    method = fields.String()
    reference = fields.String(allow_none=True)
    amount = Money()
    currency = fields.String()


class OrderSchema(CamelSchema):
    id = fields.UUID()
    status = fields.Function(lambda order: str(order.status), metadata=STATUS)
    currency = fields.String()
    subtotal = Money()
    shipping_total = Money()
    tax_total = Money()
    total = Money()
    items = fields.List(fields.Nested(ItemOutSchema))
    shipping_address = fields.Nested(PostalAddressSchema)
    billing_address = fields.Nested(PostalAddressSchema)
    payment = fields.Method("_payment", metadata={"type": "object", "nullable": True,
                                                   "description": "the latest payment (PaymentOut), if any"})
    created_at = UtcDateTime()

    def _payment(self, order):
        payment = getattr(order, "current_payment", None)  # set by the view
        return PAYMENT_OUT.dump(payment) if payment is not None else None


PAYMENT_OUT = PaymentOutSchema()  # built once: a schema per dump was a measurable part of a checkout's CPU


class OrderListSchema(CamelSchema):
    items = fields.List(fields.Nested(OrderSchema))
    next_cursor = fields.String(allow_none=True)


def order_wire(order) -> dict:
    """`OrderSchema().dump(order)` written out, for a list page of orders (models.orders.actions.order_page's)
    and checkout's answer (its `Placed`).

    marshmallow's nested dumps (an order, its lines, two addresses and a payment: 35 schema dumps for a page of
    ten) were half of the list's CPU once its reads were one statement. OrderSchema stays the contract and the
    document; tests/orders/test_checkout.py holds every listed order and checkout's answer equal to the order's
    own page (the schema's dump).
    """
    return {"id": str(order.id), "status": str(order.status), "currency": order.currency,
            "subtotal": _money(order.subtotal), "shippingTotal": _money(order.shipping_total),
            "taxTotal": _money(order.tax_total), "total": _money(order.total),
            "items": [{"variantId": _text(line.variant_id), "productId": _text(line.product_id), "sku": line.sku,
                       "productName": line.product_name, "unitPrice": _money(line.unit_price),
                       "quantity": line.quantity, "lineTotal": _money(line.line_total)} for line in order.items],
            "shippingAddress": _address(order.shipping_address), "billingAddress": _address(order.billing_address),
            "payment": _payment_wire(order.current_payment), "createdAt": utc_text(order.created_at)}


def _money(value) -> str | None:
    return None if value is None else format(value, "f")  # fields.Decimal(as_string=True)'s text


def _text(value) -> str | None:
    return None if value is None else str(value)


def _address(address) -> dict | None:
    if address is None:
        return None
    return {"firstName": address.first_name, "lastName": address.last_name, "line1": address.line1,
            "line2": address.line2, "city": address.city, "region": address.region,
            "postalCode": address.postal_code, "country": address.country, "phone": address.phone}


def _payment_wire(payment) -> dict | None:
    if payment is None:
        return None
    return {"id": str(payment.id), "provider": payment.provider, "status": payment.status,
            "method": payment.method, "reference": payment.reference, "amount": _money(payment.amount),
            "currency": payment.currency}


class ListQuerySchema(CamelSchema):
    limit = QueryInt(load_default=20, validate=validate.Range(1, 100))
    cursor = fields.String(load_default=None)


class PaySchema(CamelSchema):
    payment_method = Trimmed(required=True, validate=validate.Length(1, 255))


class ReasonSchema(CamelSchema):
    reason = Trimmed(load_default="", validate=validate.Length(max=1000))


class ShipmentRequestSchema(CamelSchema):
    service = Trimmed(load_default="ground", validate=validate.Length(1, 64))


class ShipmentSchema(CamelSchema):
    id = fields.UUID()
    order_id = fields.UUID()
    carrier = fields.String()
    service = fields.String()
    status = fields.String()
    tracking_number = fields.String(allow_none=True)


class ReturnSchema(CamelSchema):
    id = fields.UUID()
    order_id = fields.UUID()
    status = fields.String()
    reason = fields.String()


class OrderEventSchema(CamelSchema):
    id = Int()
    kind = fields.String()
    actor = fields.String()
    from_status = fields.Function(lambda e: str(e.from_status) if e.from_status else None,
                                  metadata=NULLABLE_STATUS)
    to_status = fields.Function(lambda e: str(e.to_status) if e.to_status else None,
                                metadata=NULLABLE_STATUS)
    reason = fields.String()
    data = fields.Dict()
    created_at = UtcDateTime()


class OrderEventListSchema(CamelSchema):
    items = fields.List(fields.Nested(OrderEventSchema))
    next_cursor = fields.String(allow_none=True)
