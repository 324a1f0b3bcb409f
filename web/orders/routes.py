"""/api/v1/orders: checkout, the order's actions and its history."""

from __future__ import annotations

from datetime import timedelta

from flask import jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from models.orders import actions, idempotency
from models.orders.tables import Order
from models import cursors
from web.auth.guard import current_actor, requires
from web.extensions import db, runtime
from web.orders.schemas import (CheckoutSchema, OrderEventListSchema, ListQuerySchema, OrderListSchema, OrderSchema,
                                PaySchema, PaymentOutSchema, ReasonSchema, ReturnSchema, ShipmentRequestSchema,
                                ShipmentSchema, order_wire)

MAX_KEY = 255  # Idempotency-Key length (the column holds this many)
blp = Blueprint("orders", __name__, url_prefix="/api/v1/orders", description="Orders and their life cycle")


def _with_payment(session, order: Order) -> Order:
    """Load what the response shows while the session is open (it is dumped after commit)."""
    if getattr(order, "current_payment", None) is None:
        order.current_payment = actions.latest_payment(session, order)
    _ = order.items, order.shipping_address, order.billing_address
    return order


def _encode_cursor(order) -> str:
    return cursors.newest_first("orders", order)


def _decode_cursor(cursor: str | None) -> tuple | None:
    return cursors.read_newest_first(cursor, "orders")


@blp.route("")
class Orders(MethodView):
    @requires("orders:create")
    @blp.arguments(CheckoutSchema())  # an instance: given the class, webargs builds a schema per request
    @blp.response(201, OrderSchema)
    @blp.alt_response(409, description="Too little stock; `errors.items` names the variants")
    @blp.alt_response(422, description="Invalid body, or an Idempotency-Key reused with another body")
    @blp.doc(parameters=[{"in": "header", "name": "Idempotency-Key", "schema": {"type": "string", "maxLength": MAX_KEY},
                          "description": "A retry with the same key returns the first answer (24 h)"}])
    def post(self, data):
        """Place an order: prices from the catalog, stock reserved; pay it with POST /orders/{id}/pay."""
        actor, key = current_actor(), request.headers.get("Idempotency-Key", "").strip()
        settings = runtime().settings
        if len(key) > MAX_KEY:  # never cut: two keys sharing a prefix would replay each other's order
            abort(422, message="Idempotency-Key is too long",
                  errors={"headers": {"Idempotency-Key": [f"At most {MAX_KEY} characters."]}})
        with db().session() as session:
            if key:
                try:
                    prior = idempotency.claim(session, actor.user_id, key,
                                              idempotency.request_hash(request.get_json(silent=True)),
                                              timedelta(seconds=settings.IDEMPOTENCY_TTL))
                except idempotency.KeyReused as exc:
                    abort(422, message=exc.message, errors=exc.errors)
                if prior is not None:
                    return jsonify(prior.response_body), prior.response_code, {"Idempotent-Replayed": "true"}
            order = actions.checkout(session, actor, data["items"], data["shipping_address"],
                                     data["billing_address"], settings.PAYMENTS_PROVIDER)
            body = order_wire(order)  # OrderSchema's dump, written out
            if key:
                idempotency.remember(session, actor.user_id, key, 201, body)
        return jsonify(body), 201

    @requires("orders:view_own", "orders:view_all")
    @blp.arguments(ListQuerySchema(), location="query")  # an instance: a class is built per request
    @blp.response(200, OrderListSchema)
    def get(self, query):
        """Own orders for customers, every order for staff and up; newest first."""
        with db().session() as session:
            found = actions.order_page(session, current_actor(), query["limit"] + 1, _decode_cursor(query["cursor"]))
        page = found[:query["limit"]]  # OrderListSchema's dump, written out (order_wire)
        return jsonify({"items": [order_wire(order) for order in page],
                        "nextCursor": _encode_cursor(page[-1]) if len(found) > query["limit"] else None})


@blp.route("/<uuid:order_id>")
class OrderDetail(MethodView):
    @requires("orders:view_own", "orders:view_all")
    @blp.response(200, OrderSchema)
    @blp.alt_response(404, description="No such order, or another customer's")
    def get(self, order_id):
        """One order: own, or any for staff."""
        with db().session() as session:
            return _with_payment(session, actions.get_order(session, current_actor(), order_id))


@blp.route("/<uuid:order_id>/events")
class OrderEvents(MethodView):
    @requires("orders:view_own", "orders:view_all")
    @blp.response(200, OrderEventListSchema)
    def get(self, order_id):
        """The order's history, oldest first."""
        with db().session() as session:
            order = actions.get_order(session, current_actor(), order_id)
            return {"items": list(order.events), "next_cursor": None}


@blp.route("/<uuid:order_id>/pay")
class Pay(MethodView):
    @requires("orders:view_own", "orders:view_all")
    @blp.arguments(PaySchema())
    @blp.response(202, PaymentOutSchema)
    @blp.alt_response(409, description="The order is not pending")
    def post(self, data, order_id):
        """Start (or retry) payment; the outcome arrives from the provider and moves the order."""
        with db().session() as session:
            return actions.request_payment(session, current_actor(), order_id, data["payment_method"])


def _order_action(action, order_id, *args):
    with db().session() as session:
        order = action(session, current_actor(), order_id, *args)
        return _with_payment(session, order)


@blp.route("/<uuid:order_id>/cancel")
class Cancel(MethodView):
    @requires("orders:view_own", "orders:view_all")
    @blp.arguments(ReasonSchema())
    @blp.response(200, OrderSchema)
    @blp.alt_response(409, description="The order can no longer be cancelled")
    def post(self, data, order_id):
        """Customer while pending; staff or admin while processing (refunds what was paid)."""
        return _order_action(actions.cancel, order_id, data["reason"])


@blp.route("/<uuid:order_id>/shipments")
class Shipments(MethodView):
    @requires("orders:update")
    @blp.arguments(ShipmentRequestSchema())
    @blp.response(202, ShipmentSchema)
    @blp.alt_response(409, description="The order is not processing")
    def post(self, data, order_id):
        """Buy a label (in a worker); the order moves to shipped when the carrier answers."""
        carrier = runtime().settings.SHIPPING_PROVIDER
        with db().session() as session:
            return actions.request_shipment(session, current_actor(), order_id, data["service"], carrier)


@blp.route("/<uuid:order_id>/deliver")
class Deliver(MethodView):
    @requires("orders:update")
    @blp.arguments(ReasonSchema())
    @blp.response(200, OrderSchema)
    @blp.alt_response(409, description="The order is not shipped")
    def post(self, data, order_id):
        """Confirm delivery."""
        return _order_action(actions.deliver, order_id, data["reason"] or "delivery confirmed")


@blp.route("/<uuid:order_id>/returns")
class Returns(MethodView):
    @requires("orders:view_own", "orders:view_all")
    @blp.arguments(ReasonSchema())
    @blp.response(200, OrderSchema)
    @blp.alt_response(409, description="The order is not shipped or delivered")
    def post(self, data, order_id):
        """Start a return (own order, or staff); the refund follows when the goods arrive."""
        return _order_action(actions.start_return, order_id, data["reason"])


@blp.route("/<uuid:order_id>/returns/received")
class ReturnReceived(MethodView):
    @requires("orders:update")
    @blp.response(200, ReturnSchema)
    @blp.alt_response(409, description="No return is waiting")
    def post(self, order_id):
        """Staff: the returned goods arrived; restock and refund."""
        with db().session() as session:
            return actions.receive_return(session, current_actor(), order_id)
