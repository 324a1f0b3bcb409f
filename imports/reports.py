"""Reject reports as CSV, and the neutralising of cells a spreadsheet would run as formulas."""

from __future__ import annotations

import csv
import io
import re
import tempfile
import uuid
from collections.abc import Iterable, Iterator

from sqlalchemy import text
from sqlalchemy.orm import Session

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A cell starting with ' is quoted too, so that taking one ' off (`restore`) gives back exactly what was written.
QUOTED_STARTS = (*FORMULA_STARTS, "'")
# "record": a CSV row counts as one record however many lines its quoted cells span (the header is
# record 1); in XML and JSON the first item is record 1.
HEADER = ("record", "column", "value", "message")


def neutralise(value):
    """A text cell that would start a formula in a spreadsheet, prefixed with ' so it stays text."""
    if isinstance(value, str) and value.startswith(QUOTED_STARTS):
        return "'" + value
    return value


QUOTED = re.compile("^'(?=[" + re.escape("".join(QUOTED_STARTS)) + "])")


def restore(value: str) -> str:
    """A cell `neutralise` quoted, as it was (what a CSV feed exported by us holds)."""
    return QUOTED.sub("", value, count=1)


def error_rows(session: Session, job_id: uuid.UUID, limit: int | None = None) -> Iterator[tuple]:
    """The job's rejected cells in row order: (row, column, value, message)."""
    query = "SELECT row_no, \"column\", value, message FROM import_errors WHERE job_id = :job_id ORDER BY row_no, id"
    if limit is not None:
        query += f" LIMIT {int(limit)}"
    yield from session.execute(text(query).execution_options(yield_per=5000), {"job_id": job_id})


def report_csv(rows: Iterable[tuple], file_message: str = "") -> Iterator[str]:
    """The report's CSV text in pieces: a header, then one line per rejected cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    if file_message:
        writer.writerow(("", "", "", neutralise(file_message)))
    for count, row in enumerate(rows):
        writer.writerow([neutralise(cell) for cell in row])
        if count % 1000 == 999:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def report_file(rows: Iterable[tuple], file_message: str = ""):
    """The report in a temporary file (in memory while small), rewound, for storage.put."""
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115  (the caller closes it)
    for piece in report_csv(rows, file_message):
        spool.write(piece.encode("utf-8"))
    spool.seek(0)
    return spool
