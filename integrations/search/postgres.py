"""PostgreSQL full-text search: a weighted tsvector column on `products` with a GIN index.

The indexing task writes `products.search_vector` from the document: name
(weight A) above description (B) above category path and attribute values
(C); and `products.name_vector` (the name alone, its own GIN index), which
lets products named by the query be ranked first without ranking every
product that merely mentions it. Rows written by plain SQL become searchable once their writer calls
`queue_indexing` (or after `flask search reindex`). Queries use web-search
syntax (`"exact phrase"`, `-not`, `or`), the word being typed matches as a
prefix, and hits are ranked by `ts_rank` then id, so the cursor is stable.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from contextlib import nullcontext
from functools import lru_cache
from itertools import islice

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.engine import Engine

from integrations.search.base import Progress, ProductDocument, SearchBackend, SearchPage, SearchQuery, split_prefix

CHUNK = 1000
# At most this many matches of each tier are ranked (see PostgresSearch.search).
RANKED = 300
NEGATED = re.compile(r'(?:^|\s)-(?:"[^"]*"|\S+)')

WRITE = text("""
    UPDATE products SET name_vector = to_tsvector(CAST(:config AS regconfig), :name), search_vector =
        setweight(to_tsvector(CAST(:config AS regconfig), :name), 'A')
        || setweight(to_tsvector(CAST(:config AS regconfig), :description), 'B')
        || setweight(to_tsvector(CAST(:config AS regconfig), :category_path || ' ' || :attributes), 'C')
    WHERE id = CAST(:id AS uuid)
""")

# The same vectors as WRITE, computed in SQL for a whole batch: one statement, nothing through Python.
# Attribute values are joined in the order the document builder sees them (jsonb's own key order).
VECTORS_FROM = """
    SELECT src.id, src.name_vector, src.search_vector,
           to_tsvector(CAST(:config AS regconfig), src.name) AS new_name_vector,
           setweight(to_tsvector(CAST(:config AS regconfig), src.name), 'A')
           || setweight(to_tsvector(CAST(:config AS regconfig), coalesce(src.description, '')), 'B')
           || setweight(to_tsvector(CAST(:config AS regconfig), coalesce(c.path, '') || ' ' || coalesce(
                  (SELECT string_agg(e.value #>> '{}', ' ' ORDER BY e.n)
                   FROM jsonb_each(src.attributes) WITH ORDINALITY AS e(key, value, n)), '')), 'C')
               AS new_search_vector
    FROM products src LEFT JOIN categories c ON c.id = src.category_id
"""
# Only rows whose vectors differ are written (and locked): a stock change, most of what is indexed, never
# changes a product's text, and rewriting an unchanged row is a non-HOT update of every index on products.
# `current` reads without locks: a text change committed later is followed by its writer's own indexing. The
# rows to write are read again locked, in id order (as the per-document writes did), at their newest version.
# Every id that exists is returned, written or not.
WRITE_FROM_TABLES = text(f"""
    WITH current AS ({VECTORS_FROM} WHERE src.id = ANY(CAST(:ids AS uuid[]))),
    stale AS ({VECTORS_FROM}
        WHERE src.id IN (SELECT id FROM current WHERE (name_vector, search_vector)
                                                      IS DISTINCT FROM (new_name_vector, new_search_vector))
        ORDER BY src.id
        FOR NO KEY UPDATE OF src),
    written AS (
        UPDATE products p SET name_vector = s.new_name_vector, search_vector = s.new_search_vector
        FROM stale s
        WHERE p.id = s.id AND (s.name_vector, s.search_vector) IS DISTINCT FROM (s.new_name_vector, s.new_search_vector)
    )
    SELECT id::text FROM current
""")

PARAMETER = re.compile(r"(?<![:\w]):(\w+)")
# feature_not_supported: "cached plan must not change result type", once a migration changed the type of a
# column the statement returns; it stays broken in that server session until prepared again
STALE_PLAN, STALE = "0A000", "stale"


def _array(values: list) -> str:
    """A PostgreSQL array literal: typed by the statement's parameter (psycopg2's ARRAY[...] is text[])."""
    return "{" + ",".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def execute_prepared(connection, sql: str, params: dict, prepare: bool = True, local: str = ""):
    """Run `sql` (`:name` parameters, as `text()` takes them) as a server-side prepared statement.

    Parsing and planning a catalog read cost PostgreSQL about as much CPU as running it; each pooled
    connection prepares a statement the first time it runs it (its name is the text's hash, kept in the
    connection's `info`: a new server session starts with a fresh one) and then only executes it. Each
    parameter's type is the one its place in the statement gives it (write `CAST(:ids AS uuid[])`).

    `prepare=False` sends the statement as it is, for one whose best plan depends on its values: after
    five runs PostgreSQL may keep a generic plan for a prepared statement, which for a keyset page walked
    the wrong index (a second instead of a millisecond).

    `local`: `SET LOCAL ...;` statements sent ahead of it in the same query string, so they hold for this
    statement alone (its implicit transaction, or the caller's).

    After a migration that changed the type of a column it returns, its next run in each older server session
    fails ("cached plan must not change result type"); the one after deallocates and prepares it again.
    """
    name, names, prepare_sql, execute_sql, plain_sql = _forms(sql)
    values = {n: _array(params[n]) if isinstance(params[n], list | tuple) else params[n] for n in names}
    if not prepare:
        return connection.exec_driver_sql(local + plain_sql, values)
    if connection.info.get(name) is not True:
        if connection.info.get(name) == STALE:
            connection.exec_driver_sql(f"DEALLOCATE {name}")
        connection.exec_driver_sql(prepare_sql)
        connection.info[name] = True
    try:
        return connection.exec_driver_sql(local + execute_sql, values)
    except DBAPIError as exc:
        if getattr(exc.orig, "pgcode", None) == STALE_PLAN:  # prepared again at its next run
            connection.info[name] = STALE
        raise


@lru_cache(maxsize=1024)
def _forms(sql: str) -> tuple[str, list[str], str, str, str]:
    """A statement's name, parameter names, PREPARE, EXECUTE and plain (psycopg2) texts, worked out once."""
    names = list(dict.fromkeys(PARAMETER.findall(sql)))
    name = "q_" + hashlib.sha1(sql.encode()).hexdigest()[:20]  # noqa: S324  (a name, not a secret)
    numbered = PARAMETER.sub(lambda m: f"${names.index(m.group(1)) + 1}", sql)
    execute = f"EXECUTE {name} ({', '.join(f'%({n})s' for n in names)})" if names else f"EXECUTE {name}"
    plain = PARAMETER.sub(lambda m: f"%({m.group(1)})s", sql.replace("%", "%%"))
    return name, names, f"PREPARE {name} AS {numbered}".replace("%", "%%"), execute, plain


VARIANT_FILTER = {
    "min_price": "v.price >= :min_price",
    "max_price": "v.price <= :max_price",
    "in_stock": "v.stock - v.reserved > 0",
}


class PostgresSearch(SearchBackend):
    def __init__(self, engine: Engine, config: str = "english"):
        self.engine = engine
        self.config = config

    def index(self, documents: list[ProductDocument]) -> None:
        if not documents:
            return
        with self.engine.begin() as conn:
            conn.execute(WRITE, [self._row(document) for document in documents])

    def index_ids(self, ids: list[str]) -> set[str]:
        """Write the vectors that changed of a batch of products in one statement; the ids that exist.

        Prepared: planning it cost PostgreSQL more than running it for the one or two products an order
        indexes, and its plan (primary-key lookups) depends on no value.
        """
        if not ids:
            return set()
        with self.engine.begin() as conn:
            return set(execute_prepared(conn, WRITE_FROM_TABLES.text, {"config": self.config, "ids": list(ids)})
                       .scalars())

    def _row(self, document: ProductDocument) -> dict:
        return {"config": self.config, "id": document.id, "name": document.name,
                "description": document.description, "category_path": document.category_path,
                "attributes": document.attributes}

    def delete(self, ids: list[str]) -> None:
        """Nothing to do: the vector goes with its row."""

    def search(self, query: SearchQuery, connection=None) -> SearchPage:
        """Hits whose name matches first (tier 1), then the rest (tier 0), each by rank then id.

        Tier 0 is only ranked when tier 1 runs out, so a broad word ranks the
        few products named by it, not every product that mentions it. Each
        tier ranks at most its first `RANKED` matches (in the order the GIN
        index yields them): ranking reads every candidate's row, and a text
        matching more than that is too broad for a finer order to help.
        """
        return self.search_page(query, None, connection)[0]

    def search_page(self, query: SearchQuery, page_sql: str | None, connection=None) -> tuple[SearchPage, str | None]:
        """`search` in one statement, both tiers in it; with `page_sql`, the page's products built by it too.

        The tiers are the two branches of a UNION ALL under the page's LIMIT: PostgreSQL runs the second
        (tier 0) only when the first gave fewer hits than the page needs. A search without filters is a
        prepared statement (its plan depends on no value: the text is the CTE's, which no plan sees) and
        builds its page in the same round trip; with a category or a price a generic plan could walk the
        wrong index, so it is planned for its values and leaves the page to the caller (None).
        """
        prepare = (query.category_ids is None and query.min_price is None and query.max_price is None
                   and not query.in_stock)
        page_sql = page_sql if prepare else None
        sql, params = self._sql(query, page_sql)
        with nullcontext(connection) if connection is not None else self.engine.connect() as conn:
            rows = execute_prepared(conn, sql, params, prepare).all()
        more = len(rows) > query.limit
        page = [(row[0], row[1], row[2]) for row in rows[:query.limit]]
        body = (rows[0][3] if rows else "[]") if page_sql is not None else None
        return SearchPage([row[2] for row in page], list(page[-1]) if more and page else None), body

    def _sql(self, query: SearchQuery, page_sql: str | None) -> tuple[str, dict]:
        head, prefix = split_prefix(query.text.lstrip())
        words = head.split()
        joiner = "&&"
        if prefix and words and words[-1].lower() == "or":  # "tea or kett": either one
            head, joiner = " ".join(words[:-1]), "||"
        tsquery = "websearch_to_tsquery(CAST(:config AS regconfig), :head)"
        # ts_rank scores any query holding a NOT as ~0, so rank by the wanted words alone.
        rank_query = "websearch_to_tsquery(CAST(:config AS regconfig), :wanted)"
        if prefix:
            tsquery = f"({tsquery} {joiner} to_tsquery(CAST(:config AS regconfig), :prefix))"
            rank_query = f"({rank_query} {joiner} to_tsquery(CAST(:config AS regconfig), :prefix))"
        params = {"config": self.config, "head": head, "wanted": NEGATED.sub(" ", head),
                  "prefix": f"{prefix}:*", "limit": query.limit + 1, "page_limit": query.limit,
                  "category_ids": query.category_ids, "min_price": query.min_price,
                  "max_price": query.max_price}
        filters = []
        if query.category_ids is not None:
            filters.append("p.category_id = ANY(CAST(:category_ids AS uuid[]))")
        variant = [sql for name, sql in VARIANT_FILTER.items() if getattr(query, name) not in (None, False)]
        if variant:
            filters.append("EXISTS (SELECT 1 FROM product_variants v WHERE v.product_id = p.id AND "
                           + " AND ".join(variant) + ")")
        after_tier = int(query.after[0]) if query.after else 1
        if query.after:
            params.update(after_rank=float(query.after[1]), after_id=str(query.after[2]))
        branches = []
        for tier in (1, 0):
            if tier > after_tier:  # the cursor is past this tier
                continue
            # Tier 1 walks the small name index only and checks the full query on its few rows (coalesce
            # keeps the planner from also scanning the big index, which a broad word fills with most of the
            # catalogue).
            where = (["p.name_vector @@ q.ranking", "coalesce(p.search_vector @@ q.query, false)"] if tier
                     else ["p.search_vector @@ q.query", "NOT coalesce(p.name_vector @@ q.ranking, false)"])
            outer = ("WHERE rank < :after_rank OR (rank = :after_rank AND id > :after_id)"
                     if query.after and tier == after_tier else "")
            # Ranking reads each candidate's row: only the first RANKED matches of a tier are ranked.
            branches.append(f"""(
                SELECT {tier} AS tier, rank, id FROM (
                    SELECT c.id::text AS id, ts_rank(c.search_vector, q.ranking)::float8 AS rank
                    FROM (SELECT p.id, p.search_vector FROM products p, q WHERE {' AND '.join(where + filters)}
                          LIMIT {RANKED}) c, q
                ) ranked {outer}
                ORDER BY rank DESC, id
                LIMIT :limit)""")
        page = ""
        if page_sql is not None:
            relation = "(SELECT CAST(id AS uuid) AS id, n FROM found WHERE n <= :page_limit) AS page"
            page = f", CASE WHEN n = 1 THEN ({page_sql.replace('{page}', relation)}) END AS page"
        sql = f"""
            WITH q AS (SELECT {tsquery} AS query, {rank_query} AS ranking),
            found AS (
                SELECT tier, rank, id, row_number() OVER (ORDER BY tier DESC, rank DESC, id) AS n
                FROM (SELECT * FROM ({' UNION ALL '.join(branches)}) tiers LIMIT :limit) hits
            )
            SELECT tier, rank, id{page} FROM found ORDER BY n
        """
        return sql, params

    def reindex(self, documents: Iterable[ProductDocument], progress: Progress | None = None) -> int:
        """Rewrite every vector in chunks; rows keep their old vector until rewritten."""
        count = 0
        iterator = iter(documents)
        while chunk := list(islice(iterator, CHUNK)):
            self.index(chunk)
            count += len(chunk)
            if progress:
                progress(len(chunk))
        return count
