"""Product bodies built by PostgreSQL (models.catalog.listing.page_items) are exactly what ProductSchema, the
documented contract, dumps."""

from __future__ import annotations

import uuid

from models.catalog import actions
from models.catalog.listing import load_page, page_items
from models.catalog.tables import ProductImage
from tests.catalog.conftest import API, variant
from web.catalog.schemas import ProductSchema


def _with_image_and_category(app, client, headers, create_product, create_category) -> str:
    category = create_category("Kitchen")
    product = create_product("Copper kettle", description="Boils", categoryId=category["id"],
                             attributes={"colour": "copper", "litres": 1.5},
                             variants=[variant("K-2", "12.5"), variant("K-1", "7.1234", stock=0)])
    with app.extensions["shop"].db.session() as session:
        session.add(ProductImage(product_id=uuid.UUID(product["id"]), storage_key=f"products/{product['id']}/a.png",
                                 content_type="image/png", alt_text="front", position=0))
    return product["id"]


def test_page_rows_and_postgresqls_json_are_the_schema_dump(app, client, headers, create_product, create_category):
    product_id = _with_image_and_category(app, client, headers, create_product, create_category)
    bare = create_product("No category, no variants")
    storage = app.extensions["shop"].storage
    schema = ProductSchema()
    with app.app_context(), app.extensions["shop"].db.session() as session:
        for pid in (product_id, bare["id"]):
            orm = actions.get_product(session, uuid.UUID(pid))
            for image in orm.images:
                image.url = storage.url(image.storage_key)
            expected = schema.dump(orm)
            [row] = load_page(session, [uuid.UUID(pid)])  # the rows GraphQL reads
            for image in row.images:
                image.url = storage.url(image.storage_key)
            assert schema.dump(row) == expected
            [item] = page_items(session, [uuid.UUID(pid)], storage.url)  # REST's bodies
            assert item == expected and list(item) == list(expected)  # same key order, same bytes
    assert expected["variants"] == [] and expected["category"] is None


def test_detail_listing_and_search_answer_what_the_write_answered(client, headers, create_product):
    created = create_product("Enamel teapot", variants=[variant("T-1", "30"), variant("T-2", "31.25")])
    detail = client.get(f"{API}/products/{created['id']}", headers=headers["staff"]).get_json()
    assert detail == created
    assert detail["variants"][0]["price"] == "30.00" and detail["variants"][1]["price"] == "31.25"
    listing = client.get(f"{API}/products", headers=headers["staff"]).get_json()["items"]
    assert [item for item in listing if item["id"] == created["id"]] == [created]
