"""Request and response bodies of /products and /categories."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from marshmallow import ValidationError, fields, validate, validates_schema

from models.catalog.categories import SEPARATOR
from models.catalog.listing import RELEVANCE, SORTS
from models.catalog.money import CURRENCIES, MAX_PRICE, PRICE_PLACES, format_price
from web.schemas import MONEY, CamelSchema, Int, QueryInt, Trimmed, UtcDateTime


class Price(fields.Field):
    """A decimal string such as "12.50": never a float, at most 4 decimals, not negative."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.metadata = {**MONEY, "pattern": r"^[0-9]+(\.[0-9]{1,4})?$", **self.metadata}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError('Must be a decimal string such as "12.50".')
        try:
            price = Decimal(value.strip())
        except InvalidOperation:
            raise ValidationError('Not a decimal number; use a string such as "12.50".') from None
        if not price.is_finite():
            raise ValidationError("Must be a finite number.")
        if price < 0:
            raise ValidationError("Must not be negative.")
        if price > MAX_PRICE:
            raise ValidationError(f"Must be at most {MAX_PRICE}.")
        if -price.as_tuple().exponent > PRICE_PLACES:
            raise ValidationError(f"At most {PRICE_PLACES} decimal places.")
        return price

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else format_price(value)


class Currency(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        code = super()._deserialize(value, attr, data, **kwargs).strip().upper()
        if code not in CURRENCIES:
            raise ValidationError("Not an ISO 4217 currency code.")
        return code


def _no_separator(value: str) -> None:
    if SEPARATOR.strip() in value:
        raise ValidationError(f"Must not contain {SEPARATOR.strip()!r} (it separates the category path).")


def _blank():
    raise ValidationError("Must not be blank.")


class CategorySchema(CamelSchema):
    id = fields.UUID(dump_only=True)
    name = Trimmed(required=True, validate=[validate.Length(min=1, max=100), _no_separator])
    parent_id = fields.UUID(allow_none=True, load_default=None)
    path = fields.String(dump_only=True)


class CategoryUpdateSchema(CamelSchema):
    name = Trimmed(validate=[validate.Length(min=1, max=100), _no_separator])
    parent_id = fields.UUID(allow_none=True)


class VariantSchema(CamelSchema):
    id = fields.UUID(dump_only=True)
    sku = Trimmed(required=True, validate=validate.Length(min=1, max=64))
    price = Price(required=True)
    currency = Currency(required=True)
    stock = Int(required=True, validate=validate.Range(min=0, max=2**31 - 1))
    reserved = Int(dump_only=True)
    attributes = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=dict)


class VariantUpdateSchema(CamelSchema):
    sku = Trimmed(validate=validate.Length(min=1, max=64))
    price = Price()
    currency = Currency()
    stock = Int(validate=validate.Range(min=0, max=2**31 - 1))
    attributes = fields.Dict(keys=fields.String(), values=fields.Raw())


class ImageSchema(CamelSchema):
    id = fields.UUID(dump_only=True)
    url = fields.String(dump_only=True)
    content_type = fields.String(dump_only=True)
    alt_text = fields.String(dump_only=True)
    position = Int(dump_only=True)


class StagedImageSchema(CamelSchema):
    """An accepted upload that a worker is storing; it joins the product's images under this id."""

    id = fields.UUID(dump_only=True)
    status = fields.String(dump_only=True, metadata={"enum": ["processing"]})
    content_type = fields.String(dump_only=True)
    alt_text = fields.String(dump_only=True)


class CategoryRefSchema(CamelSchema):
    id = fields.UUID()
    name = fields.String()
    path = fields.String()


class ProductSchema(CamelSchema):
    id = fields.UUID(dump_only=True)
    handle = Trimmed(validate=validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,254}$",
                                              error="Lowercase letters, digits and dashes."))
    name = Trimmed(required=True, validate=validate.Length(min=1, max=255))
    description = fields.String(load_default="", validate=validate.Length(max=20000))
    category_id = fields.UUID(allow_none=True, load_default=None)
    category = fields.Nested(CategoryRefSchema, dump_only=True, allow_none=True)
    attributes = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=dict)
    variants = fields.List(fields.Nested(VariantSchema), load_default=list, validate=validate.Length(max=500))
    images = fields.List(fields.Nested(ImageSchema), dump_only=True)
    created_at = UtcDateTime(dump_only=True)
    updated_at = UtcDateTime(dump_only=True)

    @validates_schema
    def unique_skus(self, data, **kwargs):
        skus = [variant["sku"] for variant in data.get("variants", [])]
        if len(skus) != len(set(skus)):
            raise ValidationError("Two variants share a sku.", "variants")


class ProductUpdateSchema(CamelSchema):
    handle = Trimmed(validate=validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,254}$",
                                              error="Lowercase letters, digits and dashes."))
    name = Trimmed(validate=validate.Length(min=1, max=255))
    description = fields.String(validate=validate.Length(max=20000))
    category_id = fields.UUID(allow_none=True)
    attributes = fields.Dict(keys=fields.String(), values=fields.Raw())


class ProductPageSchema(CamelSchema):
    items = fields.List(fields.Nested(ProductSchema))
    next_cursor = fields.String(allow_none=True)


class VariantListSchema(CamelSchema):
    items = fields.List(fields.Nested(VariantSchema))
    next_cursor = fields.String(allow_none=True, dump_default=None)


class ImageListSchema(CamelSchema):
    items = fields.List(fields.Nested(ImageSchema))
    next_cursor = fields.String(allow_none=True, dump_default=None)


class CategoryPageSchema(CamelSchema):
    items = fields.List(fields.Nested(CategorySchema))
    next_cursor = fields.String(allow_none=True)


class ProductQuerySchema(CamelSchema):
    # Not trimmed: a trailing space says the last word is finished (no prefix match).
    q = fields.String(validate=[validate.Length(max=200), lambda text: bool(text.strip()) or _blank()])
    category = fields.UUID()
    min_price = Price()
    max_price = Price()
    in_stock = fields.Boolean(load_default=False)
    sort = fields.String(validate=validate.OneOf([RELEVANCE, *SORTS]))
    limit = QueryInt(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = fields.String(validate=validate.Length(max=500))

    @validates_schema
    def consistent(self, data, **kwargs):
        if data.get("min_price") is not None and data.get("max_price") is not None \
                and data["min_price"] > data["max_price"]:
            raise ValidationError("Must not be above maxPrice.", "minPrice")
        if data.get("sort") == RELEVANCE and not data.get("q"):
            raise ValidationError("relevance needs a search text (q).", "sort")
        if data.get("q") and data.get("sort", RELEVANCE) != RELEVANCE:
            raise ValidationError("Search results are ordered by relevance.", "sort")


class PageQuerySchema(CamelSchema):
    limit = QueryInt(load_default=100, validate=validate.Range(min=1, max=500))
    cursor = fields.String(validate=validate.Length(max=500))
