"""The catalog feed (API.md "The catalog feed"): its fields and the streaming readers of its three formats.

Every reader yields `Chunk`s: a DataFrame of strings with the feed's columns
plus `row_no` (as reject reports count rows), and the row-level errors the
reader itself found (a CSV line with too many fields, say). What makes the
whole file unreadable raises `FeedError`.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple

import pandas as pd
from defusedxml import DefusedXmlException
from imports.reports import QUOTED
from defusedxml.ElementTree import iterparse
from xml.etree.ElementTree import ParseError  # noqa: S405  (only the exception; parsing is defusedxml's)

FIELDS = ("sku", "product_handle", "product_name", "description", "category_path", "price", "currency",
          "stock", "image_urls", "attributes")
FIELDS_SET = frozenset(FIELDS)
REQUIRED = ("sku", "product_handle", "product_name", "price", "currency", "stock")
FORMATS = ("csv", "xml", "json")
SAMPLE_BYTES = 64 * 1024
MAX_LINE_BYTES = 1024 * 1024  # a CSV line or JSON object longer than this is refused
MAX_CELL_CHARS = 65535


class FeedError(Exception):
    """The file as a whole cannot be read as a catalog feed."""


class RowError(NamedTuple):
    row_no: int
    column: str
    value: str
    message: str


@dataclass
class Chunk:
    frame: pd.DataFrame
    errors: list[RowError] = field(default_factory=list)


def format_of(filename: str, given: str | None = None) -> str:
    """The feed format from an explicit choice or the file's extension."""
    extension = filename.rsplit(".", 1)[-1] if "." in filename else ""
    fmt = (given or extension).lower()
    fmt = {"ndjson": "json", "jsonl": "json", "txt": "csv", "tsv": "csv"}.get(fmt, fmt)
    if fmt not in FORMATS:
        raise FeedError(f"unknown format {fmt or filename!r}: name the file .csv, .xml or .json")
    return fmt


def read_feed(stream: BinaryIO, fmt: str, chunk_rows: int,
              skip: frozenset[int] = frozenset(), skus_only: frozenset[int] = frozenset()) -> Iterator[Chunk | None]:
    """The file's rows in chunks of at most `chunk_rows`, read as a stream.

    Chunks numbered in `skip` are parsed (to find where the next starts) but
    yielded as None, without the work of shaping them.
    """
    sample = stream.read(SAMPLE_BYTES)
    if not sample.strip(b" \t\r\n"):
        raise FeedError("the file is empty")
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FeedError("UTF-16 is not supported: save the file as UTF-8")
    if b"\x00" in sample:
        raise FeedError("the file holds binary data (NUL bytes), not a text feed")
    raw = _Rejoined(sample, stream, line_limit=MAX_LINE_BYTES if fmt == "csv" else 0)
    if fmt == "csv":
        raw = _ToUtf8(raw, bom=sample.startswith(b"\xef\xbb\xbf"))
    source = io.BufferedReader(raw, buffer_size=1024 * 1024)
    readers = {"csv": _read_csv, "xml": _read_xml, "json": _read_json}
    if fmt == "csv":
        return _read_csv(source, sample, chunk_rows, skip, skus_only)
    return readers[fmt](source, sample, chunk_rows, skip)


class _Rejoined(io.RawIOBase):
    """The sample already read, then the rest of the stream; refuses lines over `line_limit` bytes."""

    def __init__(self, sample: bytes, stream: BinaryIO, line_limit: int = 0):
        self.pending = sample
        self.stream = stream
        self.line_limit = line_limit
        self.since_newline = 0
        self.offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.pending or self.stream.read(len(buffer))
        self.pending = self.pending[len(buffer):] if self.pending else b""
        data = data[:len(buffer)]
        if b"\x00" in data:  # PostgreSQL text cannot hold NUL; a text feed has none
            raise FeedError(f"the file holds binary data (a NUL byte after byte {self.offset})")
        self._check_lines(data)
        buffer[:len(data)] = data
        return len(data)

    def _check_lines(self, data: bytes) -> None:
        self.offset += len(data)
        if not self.line_limit:
            return
        last = data.rfind(b"\n")
        self.since_newline = len(data) - last - 1 if last >= 0 else self.since_newline + len(data)
        if self.since_newline > self.line_limit:
            raise FeedError(f"a line longer than {self.line_limit} bytes near byte {self.offset}")


class _ToUtf8(io.RawIOBase):
    """A CSV stream as UTF-8, its encoding decided over the whole file, not a sample.

    Until the first non-ASCII byte both readings agree. That byte decides:
    the start of a valid UTF-8 sequence makes the file UTF-8 (and a later
    invalid byte an error); anything else makes it Latin-1, wherever it comes.
    """

    def __init__(self, raw: io.RawIOBase, bom: bool = False):
        self.raw = raw
        self.encoding = "utf-8" if bom else None
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.out = self.held = b""
        self.offset = 0
        self.eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.out and not self.eof:
            data = self.raw.read(len(buffer))
            self.eof = not data
            data, self.held = self.held + (data or b""), b""
            self.out = self._convert(data)
        size = min(len(buffer), len(self.out))
        buffer[:size] = self.out[:size]
        self.out = self.out[size:]
        return size

    def _convert(self, data: bytes) -> bytes:
        if self.encoding is None:
            # In C: a per-byte Python loop here cost a fifth of a 1M-row import, and a regex still 15%.
            found = None if data.isascii() else NON_ASCII.search(data)
            if found is None:
                self.offset += len(data)
                return data
            first = found.start()
            if len(data) - first < 4 and not self.eof:  # a character may be cut here: decide with the next read
                self.held = data[first:]
                self.offset += first
                return data[:first]
            if UTF8_START.match(data, first):
                self.encoding = "utf-8"
            elif UTF8_START.search(data, first):
                raise FeedError(f"the file is not valid UTF-8: byte 0x{data[first]:02x} at offset "
                                f"{self.offset + first}, though it holds UTF-8 text; save it as UTF-8")
            else:
                self.encoding = "latin-1"
        if self.encoding == "latin-1":
            return data.decode("latin-1").encode("utf-8")
        try:
            text = self.decoder.decode(data, final=self.eof)
        except UnicodeDecodeError as exc:
            raise FeedError(f"the file is not valid UTF-8: byte 0x{data[exc.start]:02x} at offset "
                            f"{self.offset + exc.start} ({exc.reason}); save it as UTF-8 or Latin-1") from None
        self.offset += len(data)
        return text.encode("utf-8")


NON_ASCII = re.compile(rb"[\x80-\xff]")
# A UTF-8 character of two or more bytes: Latin-1 text almost never has one, so
# a file whose first non-ASCII bytes form one is UTF-8, and invalid bytes later are an error.
UTF8_START = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def _delimiter(header: str) -> str:
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    return max(counts, key=counts.get)


def _read_csv(source: BinaryIO, sample: bytes, chunk_rows: int, skip: frozenset[int],
              skus_only: frozenset[int] = frozenset()) -> Iterator[Chunk | None]:
    header = sample.decode("utf-8", errors="replace").lstrip("\ufeff").splitlines()[0]
    delimiter = _delimiter(header)
    _check_duplicate_columns(header, delimiter)
    reader = pd.read_csv(source, sep=delimiter, dtype=str, na_filter=False, keep_default_na=False,
                         encoding="utf-8-sig", chunksize=chunk_rows, on_bad_lines="warn", skip_blank_lines=False,
                         index_col=False,
                         engine="c")
    checked = False
    number = -1
    skipped = 0  # lines pandas left out in earlier chunks: its index does not count them
    while True:
        number += 1
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                frame = next(reader)
            except StopIteration:
                return
            except (pd.errors.ParserError, ValueError) as exc:
                raise FeedError(f"the CSV cannot be parsed: {str(exc).strip()}") from None
        frame.columns = [str(name).strip().lstrip("\ufeff").lower() for name in frame.columns]
        if not checked:
            _check_columns(frame.columns)
            checked = True
        messages = [str(w.message) for w in caught]
        if number in skip:
            yield None
        elif number in skus_only:
            yield _csv_skus(frame, messages, skipped)
        else:
            yield _csv_chunk(frame, messages, skipped)
        skipped += sum(1 for message in messages if BAD_LINE.search(message))


def _check_duplicate_columns(header: str, delimiter: str) -> None:
    """Refuse a header naming a column twice (which of the two would count is a guess)."""
    names = [name.strip().lower() for name in next(csv.reader([header], delimiter=delimiter), [])]
    twice = sorted({name for name in names if name and names.count(name) > 1})
    if twice:
        raise FeedError(f"the header names the column {', '.join(twice)} more than once; keep one")


def _check_columns(columns) -> None:
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise FeedError(f"required columns missing: {', '.join(missing)} (found: {', '.join(map(str, columns))}); "
                        "check the delimiter (comma, semicolon or tab) and the header row")


BAD_LINE = re.compile(r"Skipping line (\d+): (.*)")


def _csv_rows(frame: pd.DataFrame, messages: list[str], skipped_before: int):
    """The record numbers of the frame's rows (the header is record 1; lines pandas skipped still count)."""
    skipped = sorted(int(m.group(1)) for m in map(BAD_LINE.search, messages) if m)
    rows = frame.index.to_numpy() + 2 + skipped_before  # the header is row 1
    for line in skipped:
        rows[rows >= line] += 1
    return rows


def _csv_skus(frame: pd.DataFrame, messages: list[str], skipped_before: int = 0) -> Chunk:
    """Only the chunk's SKUs (as `_csv_chunk` shapes them) with their record numbers, rows without one left out.

    For a chunk an earlier scan already checked: its SKUs rebuild the
    file-wide register, and shaping the other columns was four fifths of
    re-reading it.
    """
    column = frame["sku"]
    column = column.astype(object).fillna("").astype(str).str.strip() if column.hasnans else _stripped(
        column.astype(str))
    if "\x00'" in "\x00" + "\x00".join(column.tolist()):
        column = column.str.replace(QUOTED, "", n=1, regex=True)
    skus = pd.DataFrame({"sku": column, "row_no": _csv_rows(frame, messages, skipped_before)})
    return Chunk(skus[skus["sku"] != ""], [])


def _csv_chunk(frame: pd.DataFrame, messages: list[str], skipped_before: int = 0) -> Chunk:
    rows = _csv_rows(frame, messages, skipped_before)
    frame = _conform(frame)
    for name in FIELDS:  # cells our CSV export quoted against spreadsheet formulas come back as they were
        # Cells hold no NUL: one search of the column joined (in C) finds whether any starts with a quote,
        # and only then are the cells searched one by one (in Python, it cost a tenth of an import).
        if "\x00'" in "\x00" + "\x00".join(frame[name].tolist()):
            frame[name] = frame[name].str.replace(QUOTED, "", n=1, regex=True)
    frame["row_no"] = rows
    errors = [RowError(int(m.group(1)), "", "", m.group(2).strip()) for m in map(BAD_LINE.search, messages) if m]
    blank = (frame[list(FIELDS)] == "").all(axis=1)
    return Chunk(frame[~blank], errors)


def _conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Exactly the feed's columns, as stripped strings; unknown columns are dropped."""
    out = pd.DataFrame(index=frame.index)
    for name in FIELDS:
        if name not in frame.columns:
            out[name] = ""
        elif frame[name].hasnans:
            out[name] = frame[name].astype(object).fillna("").astype(str).str.strip()
        else:
            out[name] = _stripped(frame[name].astype(str))
    return out


def _stripped(column: pd.Series) -> pd.Series:
    """The column's cells stripped; only when one has whitespace at an end, as most feeds have nothing to strip.

    The distinct first and last characters of the cells are gathered in sets (C loops) and tested: nine
    times faster than a regex over the column joined, which was a tenth of an import's Python time.
    (`str.isspace` is the test `str.strip` strips by.)
    """
    cells = column.tolist()
    if any(edge.isspace() for edge in {cell[:1] for cell in cells} | {cell[-1:] for cell in cells}):
        return column.str.strip()
    return column


def _frame(records: list[dict], first_row: int, errors: list[RowError] | None = None) -> Chunk:
    frame = _conform(pd.DataFrame.from_records(records, columns=list(FIELDS)))
    frame["row_no"] = range(first_row, first_row + len(records))
    return Chunk(frame, list(errors or ()))


def _twice(names: list[str], number: int) -> list[RowError]:
    """A row error when an item gives one of the feed's fields more than once (which one counts is a guess)."""
    twice = sorted(name for name, count in Counter(name for name in names if name in FIELDS_SET).items()
                   if count > 1)
    return [RowError(number, twice[0], "", f"{', '.join(twice)} given more than once in one item")] if twice else []


def _read_xml(source: BinaryIO, sample: bytes, chunk_rows: int, skip: frozenset[int]) -> Iterator[Chunk | None]:
    records: list[dict] = []
    errors: list[RowError] = []
    row = 1
    root = None
    try:
        for event, element in iterparse(source, events=("start", "end"), forbid_dtd=True,
                                        forbid_entities=True, forbid_external=True):
            if root is None:
                root = element
                if element.tag != "catalog":
                    raise FeedError(f"the XML root element must be <catalog>, not <{element.tag}>")
            elif event == "end" and element.tag == "item":
                errors += _twice([child.tag for child in element], row + len(records))
                records.append({child.tag: (child.text or "") for child in element if child.tag in FIELDS})
                root.clear()  # keeps memory flat: finished items are dropped
                if len(records) == chunk_rows:
                    yield None if (row - 1) // chunk_rows in skip else _frame(records, row, errors)
                    row += len(records)
                    records, errors = [], []
    except DefusedXmlException as exc:
        raise FeedError(f"the XML declares a DTD or entities, which are refused ({type(exc).__name__})") from None
    except ParseError as exc:
        raise FeedError(f"the XML is not well-formed: {exc}") from None
    if root is None:
        raise FeedError("the XML has no <catalog> element")
    if records:
        yield None if (row - 1) // chunk_rows in skip else _frame(records, row, errors)


def _read_json(source: BinaryIO, sample: bytes, chunk_rows: int, skip: frozenset[int]) -> Iterator[Chunk | None]:
    records: list[dict] = []
    errors: list[RowError] = []
    row = 1
    for value in _json_values(io.TextIOWrapper(source, encoding="utf-8-sig")):
        number = row + len(records)
        if isinstance(value, dict):
            errors += _twice(value.pop(DUPLICATED, []), number)
        if not isinstance(value, dict):
            errors.append(RowError(number, "", _short(json.dumps(value)), "an item must be a JSON object"))
            value = {}
        elif value and not FIELDS_SET & value.keys():
            errors.append(RowError(number, "", _short(json.dumps(value)), "an object without any of the feed's "
                                   "fields: items must be in a top-level array or one object per line"))
        records.append({key: _json_cell(cell) for key, cell in value.items() if key in FIELDS})
        if len(records) == chunk_rows:
            yield _json_chunk(records, errors, row, chunk_rows, skip)
            row += len(records)
            records, errors = [], []
    if records or errors:
        yield _json_chunk(records, errors, row, chunk_rows, skip)


def _json_chunk(records, errors, row, chunk_rows, skip) -> Chunk | None:
    if (row - 1) // chunk_rows in skip:
        return None
    return _frame(records, row, errors)


DUPLICATED = "\x00duplicated"  # where _json_object notes the keys an object gave twice


def _json_object(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object as a dict, noting under DUPLICATED the keys it gave more than once (json keeps the last)."""
    value = dict(pairs)
    if len(value) < len(pairs):
        value[DUPLICATED] = [key for key, _ in pairs]
    return value


def _json_cell(value) -> str:
    if isinstance(value, list):
        return "|".join(str(v) for v in value)
    if isinstance(value, dict):
        return ";".join(f"{k}={v}" for k, v in value.items() if k != DUPLICATED)
    return "" if value is None else str(value)


def _json_values(text: io.TextIOBase) -> Iterator:
    """Each item of a top-level array, or each of a sequence of values (one object per line)."""
    decoder = json.JSONDecoder(object_pairs_hook=_json_object)
    buffer, position, eof = "", 0, False
    in_array = None

    def fill():
        nonlocal buffer, position, eof
        more = text.read(1024 * 1024)
        eof = not more
        buffer = buffer[position:] + more
        position = 0

    try:
        fill()
        while True:
            while True:
                while position < len(buffer) and buffer[position] in " \t\r\n,":
                    if buffer[position] == "," and not in_array:
                        raise FeedError("unexpected ',' between top-level JSON values")
                    position += 1
                if position < len(buffer) or eof:
                    break
                fill()
            if position >= len(buffer):
                if in_array:
                    raise FeedError("the JSON array is not closed (truncated file?)")
                return
            if in_array is None:
                in_array = buffer[position] == "["
                if in_array:
                    position += 1
                    continue
            if in_array and buffer[position] == "]":
                return
            if not in_array and buffer[position] != "{":
                raise FeedError("JSON must be an array of objects or one object per line")
            try:
                value, end = decoder.raw_decode(buffer, position)
            except json.JSONDecodeError as exc:
                if eof or len(buffer) - position > MAX_LINE_BYTES:
                    raise FeedError(f"invalid JSON: {exc.msg} (or an item over {MAX_LINE_BYTES} bytes)") from None
                fill()
                continue
            except RecursionError:
                raise FeedError("invalid JSON: an item nested too deep (a feed item is an object of "
                                "values, lists or one level of key/value pairs)") from None
            position = end
            yield value
    except UnicodeDecodeError as exc:
        raise FeedError(f"the file is not valid UTF-8: {exc.reason}") from None


def _short(value: str, limit: int = 200) -> str:
    return value if len(value) <= limit else value[:limit] + "…"
