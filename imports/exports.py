"""Exports of products (as an importable feed) and orders, as CSV, JSON or XML, streamed to a destination.

Rows are read with a server-side cursor and written to a temporary file
(in memory while small) that is then streamed to the destination's storage.
CSV text cells that a spreadsheet would run as a formula are neutralised.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import unquote
from xml.sax.saxutils import escape

from sqlalchemy import text

from imports import inboxes
from imports.feed import FIELDS
from imports.reports import neutralise
from models.db import Database
from models.errors import NotFound
from models.money import amount_text
from models.imports.tables import FAILED, QUEUED, RUNNING, SUCCEEDED, ExportJob
from models import task_names
from models.outbox import enqueue
from models.users.permissions import SYSTEM, Actor, authorize
from settings import Settings

KINDS = ("products", "orders")
FORMATS = ("csv", "json", "xml")
RUN = task_names.RUN_EXPORT
CONTENT_TYPES = {"csv": "text/csv", "json": "application/json", "xml": "application/xml"}

PRODUCTS = text("""
    SELECT v.sku, p.handle AS product_handle, p.name AS product_name, p.description,
           COALESCE(c.path, '') AS category_path, v.price, v.currency, v.stock,
           COALESCE((SELECT string_agg(i.source_url, '|' ORDER BY i.position) FROM product_images i
                     WHERE i.product_id = p.id AND i.source_url IS NOT NULL), '') AS image_urls,
           COALESCE((SELECT string_agg(key || '=' || value, ';' ORDER BY key)
                     FROM jsonb_each_text(v.attributes)), '') AS attributes
    FROM product_variants v JOIN products p ON p.id = v.product_id LEFT JOIN categories c ON c.id = p.category_id
    ORDER BY p.handle, v.sku
""")

# One row per order line; order columns repeat. Only columns every version of the orders tables has.
ORDERS = text("""
    SELECT o.id AS order_id, o.status, o.currency, o.subtotal, o.total, o.created_at,
           i.sku, i.product_name, i.quantity, i.unit_price, i.line_total
    FROM orders o LEFT JOIN order_items i ON i.order_id = o.id
    ORDER BY o.created_at, o.id, i.sku
""")
# Amounts are written with their currency's decimals (12.50 EUR, 1500 JPY, 1.250 KWD), as emails show them.
MONEY_FIELDS = frozenset({"price", "subtotal", "total", "unit_price", "line_total"})
ORDER_FIELDS = ("order_id", "status", "currency", "subtotal", "total", "created_at", "sku", "product_name",
                "quantity", "unit_price", "line_total")


def allowed_destination(settings: Settings, destination: str | None) -> str:
    """The destination if it is (inside) a configured one; the first configured one when none is given.

    A folder inside a configured destination is named by plain segments: no `.`, `..`, empty segment,
    backslash, query or control character (even percent-encoded), so it cannot resolve outside.
    """
    configured = inboxes.split_locations(settings.EXPORT_DESTINATIONS)
    if not destination and configured:
        return configured[0]
    for location in configured:
        if destination == location:
            return location
        base, _, query = location.partition("?")
        base = base.rstrip("/") + "/"
        if destination and destination.startswith(base) and _plain_folder(destination[len(base):]):
            return base + destination[len(base):].rstrip("/") + (f"?{query}" if query else "")
    raise inboxes.LocationError("destination must be one of EXPORT_DESTINATIONS or a folder inside one")


def _plain_folder(relative: str) -> bool:
    text = unquote(relative).rstrip("/")
    if not text or any(char in text for char in "\\?#") or any(ord(char) < 32 or ord(char) == 127 for char in text):
        return False
    return all(segment not in ("", ".", "..") for segment in text.split("/"))


# Characters XML 1.0 cannot hold, even as references; an XML export replaces them with U+FFFD.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value) -> str:
    """Text as XML character data that always parses and keeps carriage returns."""
    return escape(NOT_XML.sub("\ufffd", str(value)), {"\r": "&#13;"})


def _cell(value):
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return "" if value is None else value


def _records(db: Database, kind: str) -> Iterator[dict]:
    with db.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=2000).execute(
            PRODUCTS if kind == "products" else ORDERS)
        for row in result.mappings():
            yield {key: amount_text(value, row["currency"]) if key in MONEY_FIELDS and value is not None
                   else _cell(value) for key, value in row.items()}


def write(records: Iterator[dict], fmt: str, columns: tuple[str, ...], out) -> int:
    """Write records as `fmt` to the binary file `out`; the number written."""
    stream = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    count = 0
    if fmt == "csv":
        writer = csv.writer(stream)
        writer.writerow(columns)
        for record in records:
            writer.writerow([neutralise(record[name]) for name in columns])
            count += 1
    elif fmt == "json":
        stream.write("[")
        for count, record in enumerate(records, 1):
            stream.write(("," if count > 1 else "") + "\n" + json.dumps(record, ensure_ascii=False))
        stream.write("\n]\n")
    else:
        stream.write('<?xml version="1.0" encoding="UTF-8"?>\n<catalog>\n' if columns == FIELDS else
                     '<?xml version="1.0" encoding="UTF-8"?>\n<orders>\n')
        tag = "item" if columns == FIELDS else "line"
        for record in records:
            count += 1
            cells = "".join(f"<{name}>{xml_text(record[name])}</{name}>" for name in columns)
            stream.write(f"<{tag}>{cells}</{tag}>\n")
        stream.write("</catalog>\n" if columns == FIELDS else "</orders>\n")
    stream.flush()
    stream.detach()
    return count


def run(db: Database, settings: Settings, export_id: str) -> str:
    """Write the export's file to its destination, once."""
    with db.session() as session:
        job = session.get(ExportJob, uuid.UUID(export_id), with_for_update=True)
        if job is None or job.status not in (QUEUED, RUNNING):
            return "already done"
        job.status = RUNNING
        session.expunge(job)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    key = f"{job.kind}-{stamp}-{str(job.id)[:8]}.{job.format}"
    storage = inboxes.open_storage(settings, job.destination)
    try:
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
            count = write(_records(db, job.kind), job.format, FIELDS if job.kind == "products" else ORDER_FIELDS,
                          spool)
            spool.seek(0)
            storage.put(key, spool, CONTENT_TYPES[job.format])
        status, location, message = SUCCEEDED, storage.url(key), ""
    except inboxes.LocationError as exc:
        status, location, message = FAILED, None, str(exc)
    finally:
        inboxes.close(storage)
    with db.session() as session:
        done = session.get(ExportJob, job.id, with_for_update=True)
        done.status, done.location, done.message, done.finished_at = status, location, message, datetime.now(UTC)
        done.rows = count if status == SUCCEEDED else 0
    return status


def create(session, actor: Actor, kind: str, fmt: str, destination: str) -> ExportJob:
    """A queued export job, run by a worker after commit (admins, or the nightly job as the system)."""
    authorize(actor, "exports:create")
    job = ExportJob(id=uuid.uuid4(), kind=kind, format=fmt, destination=destination, status=QUEUED,
                    created_by=actor.user_id)
    session.add(job)
    enqueue(session, RUN, export_id=job.id)
    return job


def get(session, actor: Actor, export_id: uuid.UUID) -> ExportJob:
    """One export's status and where its file went."""
    authorize(actor, "exports:view")
    job = session.get(ExportJob, export_id)
    if job is None:
        raise NotFound("no such export")
    return job


def queue_nightly(db: Database, settings: Settings) -> int:
    """Products and orders as CSV to the first configured destination; nothing when none is configured."""
    destinations = inboxes.split_locations(settings.EXPORT_DESTINATIONS)
    if not destinations:
        return 0
    with db.session() as session:
        for kind in KINDS:
            create(session, SYSTEM, kind, "csv", destinations[0])
    return len(KINDS)
