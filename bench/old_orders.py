"""Orders placed long ago, with every kind of dependent row, written in bulk (for the retention benchmark and tests).

Address snapshots hold placeholder text rather than sealed values: nothing
reads them back, the purge only deletes them.
"""

from __future__ import annotations

from sqlalchemy import text

OLD_ORDERS = """
WITH o AS (
  INSERT INTO orders (user_id, status, currency, subtotal, total, stock_state, created_at, updated_at)
  SELECT :user_id, 'returned', 'EUR', 25, 25, 'restocked', now() - CAST(:age AS interval) - make_interval(secs => g),
         now() - CAST(:age AS interval) - make_interval(secs => g)
  FROM generate_series(1, :count) g RETURNING id, created_at),
items AS (INSERT INTO order_items (order_id, sku, product_name, unit_price, quantity, line_total)
  SELECT id, 'SKU-' || n, 'Teapot', 12.50, 1, 12.50 FROM o, generate_series(1, 2) n),
events AS (INSERT INTO order_events (order_id, kind, actor, from_status, to_status, created_at)
  SELECT id, 'status', 'system', s.f::order_status, s.t::order_status, created_at
  FROM o, (VALUES (NULL, 'pending'), ('pending', 'processing'), ('processing', 'shipped'),
                  ('shipped', 'delivered'), ('delivered', 'returned')) s(f, t)),
pays AS (INSERT INTO payments (order_id, provider, reference, amount, currency, status)
  SELECT id, 'sandbox', 'pi_' || id, 25, 'EUR', 'succeeded' FROM o RETURNING id, order_id),
refunds AS (INSERT INTO refunds (order_id, payment_id, provider, reference, amount, status)
  SELECT order_id, id, 'sandbox', 're_' || id, 25, 'succeeded' FROM pays),
returns AS (INSERT INTO returns (order_id, reason, status) SELECT id, 'damaged', 'refunded' FROM o),
ships AS (INSERT INTO shipments (order_id, carrier, service, tracking_number, status)
  SELECT id, 'sandbox', 'ground', '1Z' || replace(id::text, '-', ''), 'delivered' FROM o),
shipping AS (INSERT INTO shipping_addresses (order_id, first_name, last_name, line1, city, postal_code, country)
  SELECT id, 'x', 'x', 'x', 'x', 'x', 'x' FROM o)
INSERT INTO billing_addresses (order_id, first_name, last_name, line1, city, postal_code, country)
  SELECT id, 'x', 'x', 'x', 'x', 'x', 'x' FROM o
"""

# Rows each such order has in every table that hangs off it.
PER_ORDER = {"order_items": 2, "order_events": 5, "payments": 1, "refunds": 1, "returns": 1, "shipments": 1,
             "shipping_addresses": 1, "billing_addresses": 1}


def rows_per_table(conn) -> dict[str, int]:
    """How many rows orders and each dependent table hold."""
    return {table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            for table in ("orders", *PER_ORDER)}


def insert_old_orders(conn, user_id, count: int, age_days: int) -> None:
    """`count` orders placed `age_days` (and a few seconds more each) ago, each with 14 dependent rows."""
    conn.execute(text(OLD_ORDERS), {"user_id": user_id, "count": count, "age": f"{age_days} days"})
