"""GET /api/v1/shipping/rates, answered from the Redis rate cache; a worker asks the carrier."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import fields, validate

from integrations.shipping.cache import RateCache, RateQuery
from models.orders.places import origin_from, parcel_for, place_of
from models.orders.rates import cached_or_asked
from web.auth.guard import requires
from web.extensions import db, runtime
from web.schemas import CamelSchema, Int, Money, QueryInt, Trimmed

blp = Blueprint("shipping", __name__, url_prefix="/api/v1/shipping", description="Shipping rates")


class RateQuerySchema(CamelSchema):
    postal_code = Trimmed(required=True, validate=validate.Length(1, 20))
    country = Trimmed(required=True, validate=validate.Regexp(r"^[A-Z]{2}$", error="ISO 3166-1 alpha-2 code"))
    city = Trimmed(load_default="", validate=validate.Length(max=100))
    region = Trimmed(load_default="", validate=validate.Length(max=100))
    item_count = QueryInt(load_default=1, validate=validate.Range(1, 1000))
    service = Trimmed(load_default="", validate=validate.Length(max=64))


class RateSchema(CamelSchema):
    service = fields.String()
    amount = Money()
    currency = fields.String()
    days = Int(allow_none=True)


class RatesSchema(CamelSchema):
    items = fields.List(fields.Nested(RateSchema))
    cached = fields.Boolean()


@blp.route("/rates")
class Rates(MethodView):
    @requires("products:view")
    @blp.arguments(RateQuerySchema, location="query")
    @blp.response(200, RatesSchema)
    @blp.alt_response(422, description="The carrier cannot ship to this address")
    @blp.alt_response(503, description="No rate yet (the carrier is slow or unavailable); retry after "
                                       "`Retry-After` seconds")
    def get(self, query):
        """Rates from the warehouse to an address for a number of items.

        Answered from the rate cache (24 h). On a miss a worker asks the carrier while this request waits
        a few seconds for its answer; `cached` says whether the rates were already there.
        """
        settings = runtime().settings
        cache = RateCache(runtime().redis, settings.SHIPPING_RATE_CACHE_TTL, settings.SHIPPING_RATE_RETRY_AFTER)
        destination = place_of({"first_name": "", "last_name": "", "line1": "", **query})
        wanted = RateQuery(origin_from(settings.SHIP_FROM), destination, parcel_for(query["item_count"]),
                           query["service"])
        entry, cached = cached_or_asked(db(), cache, wanted, settings.SHIPPING_RATE_WAIT,
                                        settings.SHIPPING_RATE_RETRY_AFTER)
        retry_after = {"Retry-After": str(settings.SHIPPING_RATE_RETRY_AFTER)}
        if entry is None:
            abort(503, message="the carrier has not answered yet; try again shortly", headers=retry_after)
        if entry.unavailable:
            abort(503, message=f"the carrier is unavailable: {entry.unavailable}", headers=retry_after)
        if entry.refused:
            abort(422, message=entry.refused, errors={"postalCode": [entry.refused]})
        return {"items": entry.rates, "cached": cached}
