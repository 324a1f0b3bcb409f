"""Listing: price and stock filters, sorting, and keyset pages that inserts cannot disturb."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import text

from models.catalog.indexing import queue_indexing
from tests.catalog.conftest import API, index_now, variant


def _names(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [p["name"] for p in response.get_json()["items"]]


def test_price_and_stock_filters(client, create_product):
    create_product("Cheap", variants=[variant("C", "5.00", stock=0)])
    create_product("Middle", variants=[variant("M1", "15.00", stock=2), variant("M2", "50.00", stock=0)])
    create_product("Dear", variants=[variant("D", "99.99", stock=1)])
    assert sorted(_names(client.get(f"{API}/products?minPrice=10&maxPrice=60"))) == ["Middle"]
    assert sorted(_names(client.get(f"{API}/products?inStock=true"))) == ["Dear", "Middle"]
    # One variant must match both: Middle's in-stock variant costs 15, its 50 one is sold out.
    assert _names(client.get(f"{API}/products?minPrice=40&inStock=true")) == ["Dear"]
    bad = client.get(f"{API}/products?minPrice=ten")
    assert bad.status_code == 422 and "minPrice" in bad.get_json()["errors"]["query"]
    crossed = client.get(f"{API}/products?minPrice=10&maxPrice=5")
    assert crossed.status_code == 422 and "minPrice" in crossed.get_json()["errors"]["query"]


def test_sorting(client, create_product):
    create_product("Banana", variants=[variant("B", "3.00")])
    create_product("apple", variants=[variant("A", "7.00")])
    create_product("Cherry", variants=[variant("C", "1.00")])
    assert _names(client.get(f"{API}/products?sort=price")) == ["Cherry", "Banana", "apple"]
    assert _names(client.get(f"{API}/products?sort=-price")) == ["apple", "Banana", "Cherry"]
    assert _names(client.get(f"{API}/products?sort=newest")) == ["Cherry", "apple", "Banana"]
    assert _names(client.get(f"{API}/products?sort=oldest")) == ["Banana", "apple", "Cherry"]
    assert client.get(f"{API}/products?sort=colour").status_code == 422


def _all_pages(client, query: str, between=None) -> list[str]:
    seen, cursor, pages = [], None, 0
    while True:
        response = client.get(f"{API}/products?{query}&limit=3" + (f"&cursor={cursor}" if cursor else ""))
        seen += _names(response)
        cursor = response.get_json()["nextCursor"]
        pages += 1
        if between and pages == 1:
            between()
        if cursor is None:
            return seen


def test_pages_are_stable_under_inserts(client, create_product):
    for number in range(8):
        create_product(f"P{number}", variants=[variant(f"S{number}", f"{number}.00")])
    expected_by_price = [f"P{n}" for n in range(8)]

    def insert_cheaper_and_newer():
        create_product("Inserted", variants=[variant("NEW", "0.50")])

    assert _all_pages(client, "sort=price", between=insert_cheaper_and_newer) == expected_by_price
    newest = _all_pages(client, "sort=newest", between=lambda: create_product("Later"))
    assert newest == ["Inserted"] + [f"P{n}" for n in reversed(range(8))]


def test_a_cursor_from_another_order_or_tampered_is_refused(client, create_product):
    for number in range(3):
        create_product(f"P{number}")
    cursor = client.get(f"{API}/products?sort=name&limit=1").get_json()["nextCursor"]
    assert cursor
    other = client.get(f"{API}/products?sort=price&limit=1&cursor={cursor}")
    assert other.status_code == 400 and "cursor" in other.get_json()["errors"]
    assert client.get(f"{API}/products?cursor=not-base64!").status_code == 400


def _facts(app, product_id: str) -> tuple:
    with app.extensions["shop"].db.session() as session:
        return tuple(session.execute(text("SELECT min_price, in_stock FROM products WHERE id = :id"),
                                     {"id": product_id}).one())


def test_the_kept_lowest_price_and_stock_flag_follow_every_variant_write(app, client, headers, create_product):
    product = create_product("Lamp", variants=[variant("L1", "30.00", stock=0), variant("L2", "20.00", stock=2)])
    variants = {v["sku"]: v["id"] for v in product["variants"]}
    base = f"{API}/products/{product['id']}/variants"
    assert _facts(app, product["id"]) == (Decimal("20.00"), True)
    assert client.patch(f"{base}/{variants['L2']}", json={"price": "35.00"},
                        headers=headers["staff"]).status_code == 200
    assert _facts(app, product["id"]) == (Decimal("30.00"), True)
    assert client.delete(f"{base}/{variants['L2']}", headers=headers["admin"]).status_code == 204
    assert _facts(app, product["id"]) == (Decimal("30.00"), False)
    assert _names(client.get(f"{API}/products?inStock=true")) == []
    assert client.post(base, json=variant("L3", "9.50", stock=1), headers=headers["admin"]).status_code == 201
    assert _facts(app, product["id"]) == (Decimal("9.50"), True)
    assert client.delete(f"{base}/{variants['L1']}", headers=headers["admin"]).status_code == 204
    with app.extensions["shop"].db.session() as session:
        session.execute(text("DELETE FROM product_variants WHERE sku = 'L3'"))
        queue_indexing(session, [product["id"]])
    assert _facts(app, product["id"]) == (None, False)
    assert _names(client.get(f"{API}/products?maxPrice=100")) == []


def test_an_import_style_sql_write_is_listed_right_after_queue_indexing_and_after_the_task(app, client,
                                                                                          create_product):
    cheap = create_product("Cheap", variants=[variant("C", "5.00")])
    dear = create_product("Dear", variants=[variant("D", "50.00")])
    with app.extensions["shop"].db.session() as session:
        session.execute(text("UPDATE product_variants SET price = 1.00, stock = 0 WHERE sku = 'D'"))
        queue_indexing(session, [dear["id"]])
    assert _names(client.get(f"{API}/products?sort=price")) == ["Dear", "Cheap"]
    assert _names(client.get(f"{API}/products?inStock=true")) == ["Cheap"]
    with app.extensions["shop"].db.session() as session:  # a writer that forgot: the indexing task repairs it
        session.execute(text("UPDATE product_variants SET price = 90.00 WHERE sku = 'D'"))
    index_now(dear["id"], cheap["id"])
    assert _names(client.get(f"{API}/products?sort=-price")) == ["Dear", "Cheap"]
    assert _facts(app, dear["id"]) == (Decimal("90.00"), False)


def test_an_unknown_category_is_refused_naming_it(client, create_category):
    import uuid

    create_category("Kitchen")
    for query in (f"category={uuid.uuid4()}", f"category={uuid.uuid4()}&q=mug"):
        response = client.get(f"{API}/products?{query}")
        assert response.status_code == 400 and "category" in response.get_json()["errors"], query


def test_a_category_with_its_subtree_pages_as_one_list_in_every_order(client, create_category, create_product):
    """Several categories are walked each on its own (category_id, sort) index and merged: the pages must be
    exactly those of one list over the subtree, filters applied, for every sort, across cursors."""
    from models.catalog.listing import _listing_sql

    home = create_category("Home")
    kitchen = create_category("Kitchen", home["id"])
    shelf = create_category("Shelf", kitchen["id"])
    garden = create_category("Garden")
    spread = {home["id"]: [], kitchen["id"]: [], shelf["id"]: [], garden["id"]: []}
    rows = []  # (name, lowest price, in stock with a variant in 10..40)
    for number in range(14):
        category = list(spread)[number % 4]
        low, high = f"{(number * 7) % 50 + 1}.00", f"{(number * 11) % 60 + 20}.00"
        stock = 0 if number % 5 == 0 else 3
        create_product(f"P{number:02}", categoryId=category,
                       variants=[variant(f"A{number}", low, stock=stock), variant(f"B{number}", high, stock=1)])
        if category != garden["id"]:
            matches = any(10 <= Decimal(price) <= 40 and units > 0 for price, units in ((low, stock), (high, 1)))
            rows.append((f"P{number:02}", min(Decimal(low), Decimal(high)), matches))
    filters = "&minPrice=10&maxPrice=40&inStock=true"
    wanted = [row for row in rows if row[2]]
    assert 3 < len(wanted) < len(rows)
    for sort, key, reverse in (("price", lambda r: r[1], False), ("-price", lambda r: r[1], True),
                               ("oldest", lambda r: r[0], False), ("newest", lambda r: r[0], True),
                               ("name", lambda r: r[0], False)):
        for query, expected in ((f"category={home['id']}&sort={sort}", rows),
                                (f"category={home['id']}&sort={sort}{filters}", wanted)):
            names = _all_pages(client, query)
            assert names == [r[0] for r in sorted(expected, key=key, reverse=reverse)] or sort.endswith(
                "price"), (query, names)
            assert sorted(names) == sorted(r[0] for r in expected), query
            if sort.endswith("price"):  # ties broken by id: the prices must still be in order
                prices = [dict((r[0], r[1]) for r in rows)[name] for name in names]
                assert prices == sorted(prices, reverse=reverse), query
    # Each category of the subtree walks its own index in order (a LATERAL per category); the subtree is
    # read by the same statement.
    from models.catalog.listing import SUBTREE_IN_STATEMENT

    for sort in ("price", "-price", "newest", "oldest"):
        assert "LATERAL" in _listing_sql(sort, SUBTREE_IN_STATEMENT, True, True, True, False)
    assert "LATERAL" not in _listing_sql("name", 2, True, True, True, False)  # no (category_id, name) index


def test_a_category_page_by_price_or_date_is_one_statement_and_an_unknown_category_still_400(
        app, client, headers, create_category, create_product):
    import uuid

    from tests.catalog.conftest import engines
    from tests.helpers import Statements

    home = create_category("Home")
    kitchen = create_category("Kitchen", home["id"])
    empty = create_category("Empty")
    create_product("Pan", categoryId=kitchen["id"], variants=[variant("P", "9.00")])
    for sort in ("price", "newest"):
        with Statements(*engines(app)) as sql:
            names = _names(client.get(f"{API}/products?category={home['id']}&sort={sort}", headers=headers["staff"]))
        assert names == ["Pan"]
        assert len([s for s in sql.seen if not s.startswith("PREPARE")]) == 2, sql.seen  # the ids, the page
        assert _names(client.get(f"{API}/products?category={empty['id']}&sort={sort}")) == []
        for who in ("staff", "guest"):
            unknown = client.get(f"{API}/products?category={uuid.uuid4()}&sort={sort}", headers=headers[who])
            assert unknown.status_code == 400 and "category" in unknown.get_json()["errors"], sort


def test_the_keyset_statement_is_never_jit_compiled(app, create_category):
    """A walk over many categories, or a sparse filter, is estimated above jit_above_cost; compiling the plan
    took PostgreSQL about 100 ms for a page that runs in one. The statement turns JIT off for itself."""
    from integrations.search.postgres import _forms
    from models.catalog.listing import JIT_OFF, SUBTREE_IN_STATEMENT, Filters, _listing_sql, _prepared, listing_ids

    root = create_category("Home")
    with app.extensions["shop"].db.reads.connect() as connection:
        connection.exec_driver_sql("SET jit_above_cost = 0")  # every plan would be compiled
        try:
            for sort, categories in (("price", SUBTREE_IN_STATEMENT), ("name", 0), ("newest", 1)):
                sql = _listing_sql(sort, categories, True, True, True, False)
                params = {"root": root["id"], "category_id": root["id"], "min_price": 1, "max_price": 9,
                          "limit": 21}
                plan = _prepared(connection, "EXPLAIN (ANALYZE) " + sql, params, False, JIT_OFF)
                assert "JIT" not in "\n".join(row[0] for row in plan), sort
                compiled = _prepared(connection, "EXPLAIN (ANALYZE) " + sql, params, False)
                assert "JIT" in "\n".join(row[0] for row in compiled), sort  # what the statement avoids
            # The walk per category is prepared: its generic plan is made under the same SET LOCAL.
            listing_ids(connection, Filters(uuid.UUID(root["id"]), Decimal(1), Decimal(9), True), "price", 20, None)
            name, names, _, execute, _ = _forms(_listing_sql("price", SUBTREE_IN_STATEMENT, True, True, True, False))
            plan = connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan; EXPLAIN (ANALYZE) "
                                              + execute, {n: params[n] for n in names}).all()
            assert "JIT" not in "\n".join(row[0] for row in plan)
        finally:
            connection.exec_driver_sql("RESET jit_above_cost")


def test_a_category_page_by_price_or_date_runs_the_generic_plan_of_its_prepared_statement(app, create_category):
    """Its walk per category is the plan for any values: planned once per connection, not for each page."""
    from models.catalog.listing import Filters, listing_ids

    home = create_category("Home")
    create_category("Kitchen", home["id"])
    with app.extensions["shop"].db.reads.connect() as connection:
        for sort in ("price", "newest"):
            for low in range(1, 8):
                listing_ids(connection, Filters(uuid.UUID(home["id"]), Decimal(low), Decimal(50), True), sort, 20,
                            None)
        plans = connection.execute(text("SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                                        "WHERE statement LIKE :walk"), {"walk": "%LATERAL%"}).all()
    assert len(plans) == 2 and all(generic == 7 and custom == 0 for generic, custom in plans), plans
