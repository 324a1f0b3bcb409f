"""GET /api/v1/shipping/rates, cached in Redis for SHIPPING_RATE_CACHE_TTL."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import fields, validate

from integrations.errors import PermanentError, TransientError
from integrations.shipping.cache import CachedRates
from models.orders.places import origin_from, parcel_for, place_of
from web.auth.guard import requires
from web.extensions import runtime
from web.schemas import CamelSchema, Trimmed, Int, Money, QueryInt

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
    @blp.alt_response(503, description="The carrier is unavailable; try again later")
    def get(self, query):
        """Rates from the warehouse to an address for a number of items."""
        rt = runtime()
        cache = CachedRates(rt.shipping, rt.redis, rt.settings.SHIPPING_RATE_CACHE_TTL)
        destination = place_of({"first_name": "", "last_name": "", "line1": "", **query})
        try:
            rates, cached = cache.rates(origin_from(rt.settings.SHIP_FROM), destination,
                                        parcel_for(query["item_count"]), query["service"])
        except TransientError as exc:
            abort(503, message=f"the carrier is unavailable: {exc}")
        except PermanentError as exc:
            abort(422, message=str(exc), errors={"postalCode": [str(exc)]})
        return {"items": rates, "cached": cached}
