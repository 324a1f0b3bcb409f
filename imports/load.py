"""The staged load: COPY a chunk's valid rows into a staging table, then merge them set-based.

Everything here runs inside the caller's transaction (one per chunk), so a
chunk lands whole or not at all, and merging it again changes nothing: every
upsert skips rows whose values are already those of the file.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable
from itertools import repeat

import pandas as pd
from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session

STAGED = ("job_id", "row_no", "sku", "product_handle", "product_name", "description", "category_path", "price",
          "currency", "stock", "image_urls", "attributes", "chunk")
_FROM_FRAME = ("row_no", "sku", "product_handle", "product_name", "description", "category_path", "price",
               "currency", "stock", "image_urls", "attributes_json")


def copy_in(session: Session, table: str, columns: Iterable[str], data, not_null: Iterable[str] = (),
            fmt: str = "csv") -> None:
    """COPY CSV (or PostgreSQL's text format) into `table` on the session's own connection (so in its transaction).

    In CSV, empty cells are NULL, except in the `not_null` columns, where they are empty strings.
    """
    cursor = session.connection().connection.dbapi_connection.cursor()
    options = f", FORCE_NOT_NULL ({', '.join(not_null)})" if not_null else ""
    try:
        cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT {fmt}{options})", data)
    finally:
        cursor.close()


_OPTIONAL = frozenset(("description", "category_path", "image_urls", "attributes_json"))
_SPECIAL = ("\\", "\t", "\n", "\r")  # what COPY's text format escapes with a backslash
_ESCAPED = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text_cells(values: list[str], optional: bool) -> list[str]:
    """A column's cells for COPY's text format: escaped (only when one needs it), blank optional ones NULL."""
    joined = "".join(values)
    if any(special in joined for special in _SPECIAL):  # substring searches in C; most columns have none
        values = [value.translate(_ESCAPED) for value in values]
    return [value or "\\N" for value in values] if optional else values


def staged_text(job_id: uuid.UUID, chunk: int, rows: pd.DataFrame) -> io.StringIO:
    """A chunk's normalised rows in COPY's text format, as `stage` COPYs them (blank optional cells: NULL).

    Built a column at a time and joined in C: a quarter of the time the csv module took row by row, and a
    fifth of `DataFrame.to_csv`'s.
    """
    count = len(rows)
    columns = [[str(row) for row in rows["row_no"].tolist()]]
    columns += [_text_cells(rows[name].tolist(), name in _OPTIONAL) for name in _FROM_FRAME[1:]]
    lines = map("\t".join, zip(repeat(str(job_id), count), *columns, repeat(str(chunk), count), strict=False))
    return io.StringIO("\n".join(lines) + "\n" if count else "")


def stage(session: Session, data: io.StringIO) -> None:
    """COPY `staged_text` rows into import_staging, in the caller's transaction (the scan's record of the chunk)."""
    copy_in(session, "import_staging", STAGED, data, fmt="text")


def _new_chunk_table(session: Session) -> None:
    # A private table for this transaction's chunk: concurrent chunks and imports neither see nor lock each
    # other's rows, and ANALYZE gives the planner this chunk's statistics.
    # (Dropped first: a chunk split after a refusal stages its halves in one transaction.)
    session.execute(text("DROP TABLE IF EXISTS chunk_staging"))
    session.execute(text("CREATE TEMP TABLE chunk_staging (LIKE import_staging) ON COMMIT DROP"))


def take_staged(session: Session, job_id: uuid.UUID, chunk: int) -> int:
    """Move the chunk's rows the scan staged into this transaction's `chunk_staging`; how many there were.

    Deleted from import_staging in the transaction that merges them, so they are gone once merged, and
    still there if that transaction rolls back.
    """
    _new_chunk_table(session)
    return session.execute(text("""
        WITH taken AS (DELETE FROM import_staging WHERE job_id = :job_id AND chunk = :chunk RETURNING *)
        INSERT INTO chunk_staging SELECT * FROM taken
    """), {"job_id": job_id, "chunk": chunk}).rowcount


def stage_read(session: Session, job_id: uuid.UUID, chunk: int, rows: pd.DataFrame) -> None:
    """Put rows read from the file again (their staged copy lost) into this transaction's `chunk_staging`."""
    _new_chunk_table(session)
    copy_in(session, "chunk_staging", STAGED, staged_text(job_id, chunk, rows), fmt="text")


def restage(session: Session, rows: list[int]) -> None:
    """`chunk_staging` holding only `rows` of the chunk set aside as `chunk_refused` (a chunk being split)."""
    _new_chunk_table(session)
    session.execute(text("INSERT INTO chunk_staging SELECT * FROM chunk_refused WHERE row_no = ANY(:rows)"),
                    {"rows": rows})


def forget_staged(session: Session, job_id: uuid.UUID) -> None:
    """Delete what the job still has staged (a file refused, a job ended): nothing of it is merged after this."""
    session.execute(text("DELETE FROM import_staging WHERE job_id = :job_id"), {"job_id": job_id})


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


# Chunks of one file merge in parallel and may commit out of file order, so
# each product keeps the job and the file rows that wrote its name, its
# description and its category; a field is overwritten only by a row further
# down the same file (or by another job). The rows are recorded even when the
# values are already equal (without moving updated_at), or an earlier chunk
# merged later would take their place. A blank description or category keeps
# what is there, so each comes from the last row of the product that gives one.
_SAME_JOB = "products.import_job_id IS NOT DISTINCT FROM EXCLUDED.import_job_id"
_NAME_WINS = f"(NOT ({_SAME_JOB}) OR EXCLUDED.import_name_row > products.import_name_row)"


def _field_wins(row: str) -> str:
    return (f"(EXCLUDED.{row} IS NOT NULL AND (NOT ({_SAME_JOB}) OR products.{row} IS NULL "
            f"OR EXCLUDED.{row} > products.{row}))")


def _winner(column: str, wins: str) -> str:
    return f"CASE WHEN {wins} THEN EXCLUDED.{column} ELSE products.{column} END"


def _row_kept(row: str, wins: str) -> str:
    """The row that wrote a field: the new one when it wins, the old one only within the same job."""
    return f"CASE WHEN {wins} THEN EXCLUDED.{row} WHEN {_SAME_JOB} THEN products.{row} END"


_DESCRIPTION_WINS = _field_wins("import_description_row")
_CATEGORY_WINS = _field_wins("import_category_row")
_NAME, _DESCRIPTION, _CATEGORY = (_winner("name", _NAME_WINS), _winner("description", _DESCRIPTION_WINS),
                                  _winner("category_id", _CATEGORY_WINS))
_VALUES_CHANGE = (f"(products.name, products.description, products.category_id) "
                  f"IS DISTINCT FROM ({_NAME}, {_DESCRIPTION}, {_CATEGORY})")


def _vectors(name: str, description: str, category_path: str, attributes: str) -> tuple[str, str]:
    """SQL for a product's name_vector and search_vector, as the PostgreSQL search backend writes them.

    integrations.search.postgres.WRITE_FROM_TABLES computes the same two from the catalog tables
    (tests/imports/test_vectors.py checks that an import leaves exactly what it would write).
    """
    config = "CAST(:config AS regconfig)"
    return (f"to_tsvector({config}, {name})",
            f"setweight(to_tsvector({config}, {name}), 'A') "
            f"|| setweight(to_tsvector({config}, coalesce({description}, '')), 'B') "
            f"|| setweight(to_tsvector({config}, {category_path} || ' ' || {attributes}), 'C')")


def _attribute_values(column: str) -> str:
    return (f"coalesce((SELECT string_agg(e.value #>> '{{}}', ' ' ORDER BY e.n) "
            f"FROM jsonb_each({column}) WITH ORDINALITY AS e(key, value, n)), '')")


# With PostgreSQL search the upsert writes the search vectors in the same row write (a new product with them, a
# changed one with those of its new values), so the indexing task has no vector to write and the product is not
# written a second time: that second write was never HOT (both vectors have a GIN index) and was a third of the
# database's time in an import. Only a new product is given vectors in the insert's rows (the rows of
# products that exist would be computed for nothing); an existing one gets them in DO UPDATE, only when its
# values change (or it has none yet).
_UPDATED_VECTORS = _vectors(_NAME, _DESCRIPTION,
                            f"coalesce((SELECT path FROM categories WHERE id = {_CATEGORY}), '')",
                            _attribute_values("products.attributes"))
_REVECTOR = f"({_VALUES_CHANGE} OR products.search_vector IS NULL)"

# A new product is inserted with the variant facts its rows in this chunk give (lowest price, any stock), so
# refresh_variant_facts, which still runs after the variants merge, finds them right and does not write the
# row a second time (min_price is indexed, so that rewrite is never HOT: a new entry in each of the table's
# eight indexes, as costly as the insert).
# Where the guess is wrong (the product's variants span two chunks, a variant moved in with units reserved),
# the refresh corrects it; an existing product's facts are left to the refresh alone (ON CONFLICT sets none).
def _merge_products(vectors: bool) -> TextClause:
    # A new product's vectors, as _vectors writes them, with each part computed once (to_tsvector is most of
    # the statement's time): the name's vector once for both columns, a category path's once per chunk (a new
    # product has no attributes of its own yet, so that part is the path's alone).
    new_vectors = (", CASE WHEN last.new THEN last.name_vector END, CASE WHEN last.new THEN "
                   "setweight(last.name_vector, 'A') || setweight(to_tsvector(CAST(:config AS regconfig), "
                   "coalesce(described.description, '')), 'B') || coalesce(paths.vector, ''::tsvector) END"
                   ) if vectors else ""
    # Whether the product is new: a probe of the handle's index per product (a scalar subquery, never hashed:
    # EXISTS or a join could hash the chunk against a scan of every product), once (OFFSET 0: not inlined twice).
    new = (", (SELECT e.id FROM products e WHERE e.handle = l.product_handle) IS NULL AS new" if vectors else "")
    name_vector = (", CASE WHEN n.new THEN to_tsvector(CAST(:config AS regconfig), n.product_name) END "
                   "AS name_vector" if vectors else "")
    paths = ("""
    ), paths AS MATERIALIZED (
        SELECT category_path, setweight(to_tsvector(CAST(:config AS regconfig), category_path || ' ' || ''), 'C')
               AS vector
        FROM (SELECT DISTINCT category_path FROM chunk_staging
              WHERE job_id = :job_id AND category_path IS NOT NULL) p""" if vectors else "")
    join_paths = "LEFT JOIN paths ON paths.category_path = placed.path" if vectors else ""
    updated_vectors = (f"name_vector = CASE WHEN {_REVECTOR} THEN {_UPDATED_VECTORS[0]} ELSE products.name_vector END,"
                       f"search_vector = CASE WHEN {_REVECTOR} THEN {_UPDATED_VECTORS[1]} "
                       "ELSE products.search_vector END,") if vectors else ""
    return text(f"""
    WITH last AS MATERIALIZED (
        SELECT n.*{name_vector} FROM (
            SELECT l.*{new} FROM (
                SELECT DISTINCT ON (product_handle) product_handle, row_no, product_name
                FROM chunk_staging WHERE job_id = :job_id ORDER BY product_handle, row_no DESC
            ) l OFFSET 0
        ) n
    ), described AS (
        SELECT DISTINCT ON (product_handle) product_handle, row_no, description
        FROM chunk_staging WHERE job_id = :job_id AND description <> ''
        ORDER BY product_handle, row_no DESC
    ), placed AS (
        SELECT DISTINCT ON (s.product_handle) s.product_handle, s.row_no, c.id, c.path
        FROM chunk_staging s JOIN categories c ON c.path = s.category_path
        WHERE s.job_id = :job_id ORDER BY s.product_handle, s.row_no DESC
    ), facts AS (
        SELECT product_handle, min(price) AS min_price, bool_or(stock > 0) AS in_stock
        FROM chunk_staging WHERE job_id = :job_id GROUP BY product_handle{paths}
    )
    INSERT INTO products (handle, name, description, category_id, import_job_id, import_name_row,
                          import_description_row, import_category_row, min_price, in_stock
                          {", name_vector, search_vector" if vectors else ""})
    SELECT last.product_handle, last.product_name, COALESCE(described.description, ''), placed.id,
           CAST(:job_id AS uuid), last.row_no, described.row_no, placed.row_no, facts.min_price, facts.in_stock
           {new_vectors}
    FROM last LEFT JOIN described USING (product_handle) LEFT JOIN placed USING (product_handle)
         JOIN facts USING (product_handle) {join_paths}
    ORDER BY last.product_handle  -- one lock order for every chunk and import, so two never deadlock
    ON CONFLICT (handle) DO UPDATE SET
        name = {_NAME},
        description = {_DESCRIPTION},
        category_id = {_CATEGORY},
        {updated_vectors}
        import_job_id = EXCLUDED.import_job_id,
        import_name_row = {_row_kept('import_name_row', _NAME_WINS)},
        import_description_row = {_row_kept('import_description_row', _DESCRIPTION_WINS)},
        import_category_row = {_row_kept('import_category_row', _CATEGORY_WINS)},
        updated_at = CASE WHEN {_VALUES_CHANGE} THEN now() ELSE products.updated_at END
    WHERE {_NAME_WINS} OR {_DESCRIPTION_WINS} OR {_CATEGORY_WINS}
    RETURNING id, updated_at = now() AS changed
""")


MERGE_PRODUCTS, MERGE_PRODUCTS_WITH_VECTORS = _merge_products(False), _merge_products(True)

# Stock below what open orders hold is raised to `reserved` (the CHECK would
# refuse it); validation already rejected such rows, this covers a race.
# The chunk's products are found through the handle's index, once per product (LATERAL … OFFSET 0 keeps the
# planner from turning it into a join): with a plain join it hashed the chunk against a scan of every product,
# a cost per chunk that grew with the catalog (the whole table read 50 times for 1M rows into 1M products).
MERGE_VARIANTS = text("""
    WITH ids AS MATERIALIZED (
        SELECT h.product_handle, p.id
        FROM (SELECT DISTINCT product_handle FROM chunk_staging WHERE job_id = :job_id) h
        CROSS JOIN LATERAL (SELECT id FROM products WHERE handle = h.product_handle OFFSET 0) p
    ), left_behind AS MATERIALIZED (  -- the products a variant moves away from (the statement's snapshot)
        SELECT v.product_id AS id
        FROM chunk_staging s JOIN ids USING (product_handle)
        CROSS JOIN LATERAL (SELECT product_id FROM product_variants WHERE sku = s.sku OFFSET 0) v
        WHERE s.job_id = :job_id AND v.product_id <> ids.id
    ), merged AS (
        INSERT INTO product_variants (product_id, sku, price, currency, stock, attributes)
        SELECT ids.id, s.sku, s.price, s.currency, s.stock, COALESCE(s.attributes, '{}'::jsonb)
        FROM chunk_staging s JOIN ids USING (product_handle)
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
               CASE WHEN EXCLUDED.attributes = '{}'::jsonb THEN product_variants.attributes
                    ELSE EXCLUDED.attributes END)
        RETURNING product_id AS id
    )
    SELECT array_agg(DISTINCT changed.id::text)
    FROM (SELECT id FROM merged UNION ALL SELECT id FROM left_behind) changed
""")

# (Products found through the handle's index, as in MERGE_VARIANTS.)
NEW_IMAGES = text("""
    SELECT p.id, u.url
    FROM (SELECT product_handle, trim(url) AS url, min(row_no * 10000 + ordinality) AS first_seen
          FROM chunk_staging, unnest(string_to_array(image_urls, '|')) WITH ORDINALITY AS u(url, ordinality)
          WHERE job_id = :job_id AND image_urls IS NOT NULL
          GROUP BY product_handle, trim(url)) u
    CROSS JOIN LATERAL (SELECT id FROM products WHERE handle = u.product_handle OFFSET 0) p
    WHERE NOT EXISTS (SELECT 1 FROM product_images i WHERE i.product_id = p.id AND i.source_url = u.url)
    ORDER BY p.id, u.first_seen
""")


# Fresh rows have no statistics; without them the planner picks nested loops over thousands of rows. Only the
# columns the statements filter, group or join on: all of them took 40 ms a 20,000-row chunk (the long
# descriptions most), these 10.
ANALYZE_CHUNK = text("ANALYZE chunk_staging (job_id, product_handle, category_path, image_urls)")


def merge(session: Session, job_id: uuid.UUID,
          text_config: str | None = None) -> tuple[set[str], dict[str, list[str]]]:
    """Merge the staged rows; the ids of products that changed, and image URLs not fetched yet per product.

    With `text_config` (PostgreSQL search's text search configuration) the products' search vectors are
    written in the products upsert itself (see _merge_products).
    """
    # JIT compiling these statements took longer than running them (the vectors' functions push the products
    # upsert's estimate over jit_above_cost: 50 ms of compiling for a chunk whose upsert runs in 400).
    session.execute(text("SET LOCAL jit = off"))
    session.execute(ANALYZE_CHUNK)
    paths = session.scalars(text("SELECT DISTINCT category_path FROM chunk_staging "
                                 "WHERE job_id = :job_id AND category_path IS NOT NULL"), {"job_id": job_id}).all()
    if paths:
        ensure_categories(session, paths)
    products = MERGE_PRODUCTS if text_config is None else MERGE_PRODUCTS_WITH_VECTORS
    # One array back instead of a row per changed product (products whose rows were only recorded: not changed).
    changed = set(session.scalar(text(f"WITH merged AS ({products.text}) SELECT array_agg(DISTINCT merged.id::text) "
                                      f"FROM merged WHERE merged.changed"), {"job_id": job_id, "config": text_config})
                  or ())
    # The variants' products, and those a variant left (their lowest price and stock must be worked out again).
    changed |= set(session.scalar(MERGE_VARIANTS, {"job_id": job_id}) or ())
    images: dict[str, list[str]] = {}
    for product_id, url in session.execute(NEW_IMAGES, {"job_id": job_id}):
        images.setdefault(str(product_id), []).append(url.strip())
    return changed, images


# A chunk's staged rows whose stock is below what open orders hold of their variant (the database forbids
# stock < reserved). Each SKU is probed in the unique index (LATERAL … OFFSET 0, as MERGE_VARIANTS finds
# products), on the rows just staged: before, the chunk's 20,000 SKUs went to PostgreSQL as an array literal,
# a quarter of the scan's time.
STAGED_BELOW_RESERVED = text("""
    SELECT s.row_no, v.reserved
    FROM import_staging s
    CROSS JOIN LATERAL (SELECT reserved FROM product_variants WHERE sku = s.sku OFFSET 0) v
    WHERE s.job_id = :job_id AND s.chunk = :chunk AND v.reserved > s.stock
    ORDER BY s.row_no
""")


def unstage_reserved(session: Session, job_id: uuid.UUID, chunk: int) -> list[tuple[int, int]]:
    """Take the chunk's staged rows whose stock is below the units reserved out again; (row, reserved) of each."""
    found = [(int(row), int(reserved)) for row, reserved in
             session.execute(STAGED_BELOW_RESERVED, {"job_id": job_id, "chunk": chunk})]
    if found:
        session.execute(text("DELETE FROM import_staging WHERE job_id = :job_id AND chunk = :chunk "
                             "AND row_no = ANY(:rows)"), {"job_id": job_id, "chunk": chunk,
                                                          "rows": [row for row, _ in found]})
    return found
