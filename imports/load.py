"""The staged load: COPY a chunk's valid rows into a staging table, then merge them set-based.

Everything here runs inside the caller's transaction (one per chunk), so a
chunk lands whole or not at all, and merging it again changes nothing: every
upsert skips rows whose values are already those of the file.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable

import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

STAGED = ("job_id", "row_no", "sku", "product_handle", "product_name", "description", "category_path", "price",
          "currency", "stock", "image_urls", "attributes")


def copy_in(session: Session, table: str, columns: Iterable[str], data, not_null: Iterable[str] = ()) -> None:
    """COPY CSV text into `table` on the session's own connection (so inside its transaction).

    Empty cells are NULL, except in the `not_null` columns, where they are empty strings.
    """
    cursor = session.connection().connection.dbapi_connection.cursor()
    options = f", FORCE_NOT_NULL ({', '.join(not_null)})" if not_null else ""
    try:
        cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv{options})", data)
    finally:
        cursor.close()


def stage(session: Session, job_id: uuid.UUID, rows: pd.DataFrame) -> None:
    """COPY validated rows into the staging table; blank optional cells become NULL."""
    out = pd.DataFrame({
        "job_id": str(job_id), "row_no": rows["row_no"], "sku": rows["sku"],
        "product_handle": rows["product_handle"], "product_name": rows["product_name"],
        "description": rows["description"], "category_path": rows["category_path"], "price": rows["price"],
        "currency": rows["currency"], "stock": rows["stock"], "image_urls": rows["image_urls"],
        "attributes": rows["attributes_json"],
    })
    data = io.StringIO()
    # Empty strings are written unquoted, which COPY's CSV format reads as NULL.
    out.to_csv(data, index=False, header=False, quoting=csv.QUOTE_MINIMAL, na_rep="")
    data.seek(0)
    # A private copy of the staging table for this transaction: concurrent
    # imports neither see nor lock each other's rows, and ANALYZE stays local.
    # (Dropped first: a chunk split after a refusal stages its halves in one transaction.)
    session.execute(text("DROP TABLE IF EXISTS chunk_staging"))
    session.execute(text("CREATE TEMP TABLE chunk_staging (LIKE import_staging) ON COMMIT DROP"))
    copy_in(session, "chunk_staging", STAGED, data)


def ensure_categories(session: Session, paths: Iterable[str]) -> None:
    """Create every category (and ancestor) of `paths` that is missing, one tree level per statement."""
    levels: dict[int, set[tuple[str, str, str | None]]] = {}
    for path in set(paths):
        names = path.split(" > ")
        for depth in range(1, len(names) + 1):
            parent = " > ".join(names[:depth - 1]) or None
            levels.setdefault(depth, set()).add((" > ".join(names[:depth]), names[depth - 1], parent))
    for depth in sorted(levels):
        paths_, names, parents = zip(*sorted(levels[depth], key=lambda item: item[0]), strict=True)
        session.execute(text("""
            INSERT INTO categories (parent_id, name, path)
            SELECT parent.id, x.name, x.path
            FROM unnest(CAST(:paths AS text[]), CAST(:names AS text[]), CAST(:parents AS text[]))
                 AS x(path, name, parent)
            LEFT JOIN categories parent ON parent.path = x.parent
            WHERE x.parent IS NULL OR parent.id IS NOT NULL
            ON CONFLICT (parent_id, name) DO NOTHING
        """), {"paths": list(paths_), "names": list(names), "parents": list(parents)})


MERGE_PRODUCTS = text("""
    INSERT INTO products (handle, name, description, category_id)
    SELECT DISTINCT ON (s.product_handle) s.product_handle, s.product_name, COALESCE(s.description, ''), c.id
    FROM chunk_staging s LEFT JOIN categories c ON c.path = s.category_path
    WHERE s.job_id = :job_id
    ORDER BY s.product_handle, s.row_no DESC
    ON CONFLICT (handle) DO UPDATE SET
        name = EXCLUDED.name,
        description = CASE WHEN EXCLUDED.description = '' THEN products.description ELSE EXCLUDED.description END,
        category_id = COALESCE(EXCLUDED.category_id, products.category_id),
        updated_at = now()
    WHERE (products.name, products.description, products.category_id) IS DISTINCT FROM
          (EXCLUDED.name,
           CASE WHEN EXCLUDED.description = '' THEN products.description ELSE EXCLUDED.description END,
           COALESCE(EXCLUDED.category_id, products.category_id))
    RETURNING id
""")

# Stock below what open orders hold is raised to `reserved` (the CHECK would
# refuse it); validation already rejected such rows, this covers a race.
MERGE_VARIANTS = text("""
    INSERT INTO product_variants (product_id, sku, price, currency, stock, attributes)
    SELECT p.id, s.sku, s.price, s.currency, s.stock, COALESCE(s.attributes, '{}'::jsonb)
    FROM chunk_staging s JOIN products p ON p.handle = s.product_handle
    WHERE s.job_id = :job_id
    ORDER BY s.sku  -- one lock order for every import, so two never deadlock
    ON CONFLICT (sku) DO UPDATE SET
        product_id = EXCLUDED.product_id,
        price = EXCLUDED.price,
        currency = EXCLUDED.currency,
        stock = GREATEST(EXCLUDED.stock, product_variants.reserved),
        attributes = CASE WHEN EXCLUDED.attributes = '{}'::jsonb THEN product_variants.attributes
                          ELSE EXCLUDED.attributes END,
        updated_at = now()
    WHERE (product_variants.product_id, product_variants.price, product_variants.currency,
           product_variants.stock, product_variants.attributes) IS DISTINCT FROM
          (EXCLUDED.product_id, EXCLUDED.price, EXCLUDED.currency,
           GREATEST(EXCLUDED.stock, product_variants.reserved),
           CASE WHEN EXCLUDED.attributes = '{}'::jsonb THEN product_variants.attributes ELSE EXCLUDED.attributes END)
    RETURNING product_id AS id
""")

NEW_IMAGES = text("""
    SELECT p.id, u.url
    FROM (SELECT product_handle, trim(url) AS url, min(row_no * 10000 + ordinality) AS first_seen
          FROM chunk_staging, unnest(string_to_array(image_urls, '|')) WITH ORDINALITY AS u(url, ordinality)
          WHERE job_id = :job_id AND image_urls IS NOT NULL
          GROUP BY product_handle, trim(url)) u
    JOIN products p ON p.handle = u.product_handle
    WHERE NOT EXISTS (SELECT 1 FROM product_images i WHERE i.product_id = p.id AND i.source_url = u.url)
    ORDER BY p.id, u.first_seen
""")


def merge(session: Session, job_id: uuid.UUID) -> tuple[set[str], dict[str, list[str]]]:
    """Merge the staged rows; the ids of products that changed, and image URLs not fetched yet per product."""
    # Fresh rows have no statistics; without them the planner picks nested loops over thousands of rows.
    session.execute(text("ANALYZE chunk_staging"))
    paths = session.scalars(text("SELECT DISTINCT category_path FROM chunk_staging "
                                 "WHERE job_id = :job_id AND category_path IS NOT NULL"), {"job_id": job_id}).all()
    if paths:
        ensure_categories(session, paths)
    changed = set()
    for statement in (MERGE_PRODUCTS, MERGE_VARIANTS):
        # One array back instead of a row per changed product.
        ids = session.scalar(text(f"WITH changed AS ({statement.text}) SELECT array_agg(DISTINCT changed.id::text) "
                                  "FROM changed"), {"job_id": job_id})
        changed |= set(ids or ())
    images: dict[str, list[str]] = {}
    for product_id, url in session.execute(NEW_IMAGES, {"job_id": job_id}):
        images.setdefault(str(product_id), []).append(url.strip())
    return changed, images


def reserved_conflicts(session: Session, rows: pd.DataFrame) -> dict[str, int]:
    """SKU → units reserved, for the rows whose new stock is below what open orders hold."""
    stock = dict(zip(rows["sku"], rows["stock"].astype(int), strict=True))
    if not stock:
        return {}
    found = session.execute(text("SELECT sku, reserved FROM product_variants WHERE sku = ANY(:skus) AND reserved > 0"),
                            {"skus": list(stock)})
    return {sku: reserved for sku, reserved in found if stock[sku] < reserved}
