"""GraphQL benchmark: `products(first: 20)` with variants and images, and a search, beside their REST twins
and a bare Flask endpoint, in one run on the catalog benchmark's 100,000 products.

    make bench-graphql                       # or: .venv/bin/python -m bench.graphql --help

Uses the catalog benchmark's scratch database (`shop_bench_catalog`, seeded
once by either script) and Redis database 9, gunicorn with the project's
config, and wrk on loopback. GraphQL is sent as GET (`/graphql?query=…`) so
the same wrk script spreads requests over several texts. Staff rows never
touch the page cache (they measure PostgreSQL and the GraphQL execution);
guest and signed-in customer rows are served from it (customers share the
guests' entries) after one request of each text.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import catalog  # noqa: E402

PAGE = ("query ($sort: ProductSort) { products(first: 20, sort: $sort) { edges { node { id name handle "
        "category { name path } variants { sku price currency stock } images { url altText } } } "
        "pageInfo { hasNextPage endCursor } } }")
SEARCH = ("query ($q: String) { products(first: 20, search: $q) { edges { node { id name handle "
          "category { name path } variants { sku price currency stock } images { url altText } } } "
          "pageInfo { hasNextPage endCursor } } }")
SORTS = {"NEWEST": "newest", "OLDEST": "oldest", "NAME": "name", "NAME_DESC": "-name", "PRICE": "price",
         "PRICE_DESC": "-price"}


def graphql_path(query: str, variables: str) -> str:
    return "/graphql?" + urllib.parse.urlencode({"query": query, "variables": variables})


def paths(rng: random.Random) -> dict[str, list[str]]:
    words = rng.sample(catalog.WORDS + catalog.ADJECTIVES, 60)
    return {
        "rest-page": [f"/api/v1/products?limit=20&sort={sort}" for sort in SORTS.values()],
        "graphql-page": [graphql_path(PAGE, f'{{"sort": "{name}"}}') for name in SORTS],
        "rest-search": [f"/api/v1/products?limit=20&q={word}" for word in words],
        "graphql-search": [graphql_path(SEARCH, f'{{"q": "{word}"}}') for word in words],
    }


def measure(args) -> list[tuple[str, dict]]:
    work = Path(tempfile.mkdtemp(prefix="bench-graphql-"))
    customer, staff = catalog.bearer("customer"), catalog.bearer("staff")
    for name, items in paths(random.Random(11)).items():
        (work / name).write_text("\n".join(items) + "\n")
    (work / "bare").write_text("/\n")
    bare, bare_url = catalog.serve("bench.bare:app", args.workers, work / "bare.log")
    app, app_url = catalog.serve("wsgi:app", args.workers, work / "app.log")
    scenarios = [("bare Flask, constant JSON", bare_url, "bare", ""),
                 ("REST page of 20, staff (PostgreSQL)", app_url, "rest-page", staff),
                 ("GraphQL products(first: 20) + variants + images, staff (PostgreSQL)", app_url, "graphql-page",
                  staff),
                 ("REST page of 20, signed in customer (Redis cache)", app_url, "rest-page", customer),
                 ("GraphQL products(first: 20), signed in customer (Redis cache)", app_url, "graphql-page",
                  customer),
                 ("REST page of 20, guest (Redis cache)", app_url, "rest-page", ""),
                 ("GraphQL products(first: 20), guest (Redis cache)", app_url, "graphql-page", ""),
                 ("REST search, staff (PostgreSQL)", app_url, "rest-search", staff),
                 ("GraphQL search, staff (PostgreSQL)", app_url, "graphql-search", staff),
                 ("GraphQL search, signed in customer (Redis cache)", app_url, "graphql-search", customer),
                 ("GraphQL search, guest (Redis cache)", app_url, "graphql-search", ""),
                 ("bare Flask, again at the end", bare_url, "bare", "")]
    results = []
    try:
        for label, url, name, authorization in scenarios:
            if "cache" in label:
                catalog.warm(url, work / name)  # as a guest: signed-in customers read the same entries
            catalog.load(url, work / name, args.warmup, args.connections, args.threads, authorization)
            server = bare if url == bare_url else app  # catalog.table prints its CPU per request on every row
            results.append((label, catalog.load(url, work / name, args.seconds, args.connections, args.threads,
                                                authorization, server)))
    finally:
        for process in (bare, app):
            process.terminate()
            process.wait(20)
        shutil.rmtree(work, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed (make bench-graphql installs it)")
    started = time.monotonic()
    if catalog.product_count() != args.products:
        catalog.recreate_database()
        catalog.seed(args.products)
        print(f"seeded {args.products:,} products in {time.monotonic() - started:.0f} s", flush=True)
    else:
        catalog.migrate()
    import redis
    redis.Redis.from_url(catalog.REDIS_URL).flushdb()
    print(catalog.table(measure(args), args, args.products))


if __name__ == "__main__":
    main()
