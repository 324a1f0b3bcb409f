"""Row validation of a feed chunk, column by column over the whole chunk (vectorised with pandas).

`validate(chunk)` returns the valid rows, normalised for the staging table,
and one RowError per rejected cell. Duplicate SKUs across chunks are found
with a `SeenSkus` the caller keeps for the whole file.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

from models.money import CURRENCIES
from imports.feed import FIELDS, MAX_CELL_CHARS, REQUIRED, Chunk, RowError

# ASCII digits only: Python's \d also matches other scripts' digits, which PostgreSQL refuses.
PRICE = r"[0-9]{1,15}(\.[0-9]{1,4})?"
STOCK = r"[0-9]{1,9}"
# What PostgreSQL text cannot hold (NUL) and what UTF-8 cannot encode (lone surrogates, from JSON escapes).
UNSTORABLE = r"[\x00\ud800-\udfff]"
UNSTORABLE_RE = re.compile(UNSTORABLE)
# (No NUL in a URL: it separates the cells of a column joined, see _all_match.)
URLS = r"\s*https?://[^|\s\x00]+\s*(\|\s*https?://[^|\s\x00]+\s*)*"
LIMITS = {"sku": 64, "product_handle": 255, "product_name": 255, "description": MAX_CELL_CHARS,
          "category_path": 2000, "image_urls": 8000, "attributes": 8000}
CATEGORY_NAME_LIMIT = 100  # as categories.name holds
# categories.path has a btree index, whose entries PostgreSQL caps at about 2,700 bytes.
CATEGORY_PATH_BYTES = 2000


class SeenSkus(dict):
    """SKU → the row it first appeared on, over the whole file."""


def validate(chunk: Chunk, seen: SeenSkus | None = None) -> tuple[pd.DataFrame, list[RowError]]:
    """The chunk's valid rows (normalised) and the errors of the others."""
    frame = chunk.frame.copy()
    errors = list(chunk.errors)
    checks = [_storable, _required, _lengths, _price, _currency, _stock, _category_path, _image_urls, _attributes]
    for check in checks:
        errors += check(frame)
    if seen is not None:
        errors += _duplicates(frame, seen)
    bad = {error.row_no for error in errors}
    return frame[~frame["row_no"].isin(bad)], errors


def normalize(chunk: Chunk) -> pd.DataFrame:
    """The chunk's rows normalised for the staging table, unchecked (the load: the scan recorded the errors)."""
    frame = chunk.frame.copy()
    for step in (_currency, _category_path, _attributes):
        step(frame)
    return frame


# Cells hold no NUL (the readers refuse files with one), so it can separate them: one search over a whole
# column joined, in C, tells whether any cell needs the per-cell check (pandas runs those in Python).
_SEPARATOR = "\x00"


def _joined(values: pd.Series) -> str:
    return _SEPARATOR + _SEPARATOR.join(values.tolist()) + _SEPARATOR


def _all_match(values: pd.Series, pattern: str, flags: int = 0) -> bool:
    """Whether every cell matches `pattern` whole (one regex run over the column)."""
    return re.fullmatch(f"(?:\\x00(?:{pattern}))*\\x00", _joined(values), flags) is not None


def _errors(frame: pd.DataFrame, mask: pd.Series, column: str, message: str) -> list[RowError]:
    if not mask.any():  # the usual case, without building an empty selection
        return []
    rows = frame.loc[mask, ["row_no", column]]
    return [RowError(int(row), column, value[:200], message) for row, value in rows.itertuples(index=False)]


def _storable(frame):
    found = []
    for column in FIELDS:
        # One search over the whole column joined (in C) first; the per-cell search only when it finds something.
        # An ASCII string (a flag CPython keeps) holds no surrogate, so only NUL is looked for, by memchr.
        joined = "".join(frame[column].tolist())
        if "\x00" not in joined and (joined.isascii() or not UNSTORABLE_RE.search(joined)):
            continue
        found += _errors(frame, frame[column].str.contains(UNSTORABLE), column,
                         "holds a character that cannot be stored (NUL or a lone surrogate)")
    return found


def _required(frame):
    found = []
    for column in REQUIRED:
        found += _errors(frame, frame[column] == "", column, f"{column} is required")
    return found


def _lengths(frame):
    found = []
    for column, limit in LIMITS.items():
        if max(map(len, frame[column].tolist()), default=0) <= limit:
            continue
        found += _errors(frame, frame[column].str.len() > limit, column, f"longer than {limit} characters")
    return found


def _non_negative(frame, column: str, pattern: str, what: str):
    if _all_match(frame[column], f"(?:{pattern})?"):
        return []
    given = frame[column] != ""
    negative = given & frame[column].str.startswith("-")
    wrong = given & ~negative & ~frame[column].str.fullmatch(pattern)
    return (_errors(frame, negative, column, f"{column} must not be negative")
            + _errors(frame, wrong, column, f"{column} must be {what}"))


def _price(frame):
    return _non_negative(frame, "price", PRICE, "a decimal number with a dot and at most 4 decimals")


def _currency(frame):
    frame["currency"] = _per_distinct(frame["currency"], str.upper)
    wrong = (frame["currency"] != "") & ~frame["currency"].isin(CURRENCIES)
    return _errors(frame, wrong, "currency", "unknown currency (an ISO 4217 code such as EUR)")


def _stock(frame):
    return _non_negative(frame, "stock", STOCK, "a whole number")


def category_problem(path: str) -> str | None:
    """Why a category path is unusable, or None (linear in the path's length)."""
    if len(path) > LIMITS["category_path"] or len(path.encode("utf-8", "surrogatepass")) > CATEGORY_PATH_BYTES:
        return f"longer than {CATEGORY_PATH_BYTES} bytes in UTF-8"
    names = [name.strip() for name in path.split(">")]
    if any(not name for name in names):
        return "a category path has an empty name (write it as Home > Kitchen > Knives)"
    if any(len(name) > CATEGORY_NAME_LIMIT for name in names):
        return f"a category name is longer than {CATEGORY_NAME_LIMIT} characters"
    seen: set[str] = set()
    for name in names:
        if name.lower() in seen:
            return f"the category path repeats {name!r} (a cycle)"
        seen.add(name.lower())
    return None


def _per_distinct(values: pd.Series, fn) -> pd.Series:
    """`fn` applied once per distinct value (feeds repeat categories and attributes a lot).

    The results are spread back to the rows by numpy (`take` by the factorized codes), not a Python loop.
    """
    codes, distinct = pd.factorize(values)
    results = np.empty(len(distinct), dtype=object)
    results[:] = [fn(value) for value in distinct]
    return pd.Series(results[codes], index=values.index, dtype=object)


def _category_path(frame):
    # Over-long paths are already rejected by _lengths; nothing more is done with them.
    given = (frame["category_path"] != "") & (frame["category_path"].str.len() <= LIMITS["category_path"])
    paths = frame.loc[given, "category_path"]
    problems = _per_distinct(paths, category_problem)
    problems = problems[problems.notna()]
    found = [RowError(int(frame.at[index, "row_no"]), "category_path", paths[index][:200], problem)
             for index, problem in problems.items()]
    frame.loc[given, "category_path"] = _per_distinct(
        paths, lambda p: " > ".join(name.strip() for name in p.split(">")))
    return found


def _image_urls(frame):
    if _all_match(frame["image_urls"], f"(?:{URLS})?", re.IGNORECASE):
        return []
    checked = (frame["image_urls"] != "") & (frame["image_urls"].str.len() <= LIMITS["image_urls"])
    wrong = checked & ~frame["image_urls"].str.fullmatch(URLS, case=False)
    return _errors(frame, wrong, "image_urls", "image URLs must be http(s) URLs separated by |")


def parse_attributes(text: str) -> dict | None:
    """`key=value;key=value` as a dict, or None when a pair has no key."""
    pairs = [pair for pair in text.split(";") if pair.strip()]
    parsed = dict(pair.split("=", 1) if "=" in pair else ("", pair) for pair in pairs)
    parsed = {key.strip(): value.strip() for key, value in parsed.items()}
    return None if "" in parsed else parsed


def _attributes_json(text: str) -> str | None:
    parsed = parse_attributes(text)
    return None if parsed is None else json.dumps(parsed)


def _attributes(frame):
    given = (frame["attributes"] != "") & (frame["attributes"].str.len() <= LIMITS["attributes"])
    encoded = _per_distinct(frame.loc[given, "attributes"], _attributes_json)
    mask = pd.Series(False, index=frame.index)
    mask[encoded[encoded.isna()].index] = True
    frame["attributes_json"] = ""
    frame.loc[encoded.dropna().index, "attributes_json"] = encoded.dropna()
    return _errors(frame, mask, "attributes", "attributes must be key=value pairs separated by ;")


def remember(frame: pd.DataFrame, seen: SeenSkus) -> None:
    """Note a chunk's SKUs in `seen` as `validate` would (for a chunk checked by an earlier run)."""
    _duplicates(frame, seen)


def _duplicates(frame, seen: SeenSkus):
    skus, rows = frame["sku"].tolist(), frame["row_no"].tolist()
    fresh = dict(zip(skus, rows, strict=True))
    if len(fresh) == len(skus) and "" not in fresh and seen.keys().isdisjoint(fresh):
        seen.update(fresh)  # no SKU blank, repeated in the chunk or seen before: the register grows in C
        return []
    found = []
    for row, sku in zip(frame["row_no"].tolist(), frame["sku"].tolist(), strict=True):
        if not sku:
            continue
        first = seen.setdefault(sku, row)
        if first != row:
            found.append(RowError(int(row), "sku", sku[:200], f"duplicate SKU in this file (first on row {first})"))
    return found
