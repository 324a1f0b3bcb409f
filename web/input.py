"""Input the app refuses before any view sees it, and headers only some answers may carry.

- NUL characters in the path, the query, a header, a JSON string, a form
  field or an uploaded file's name: PostgreSQL and file systems cannot hold
  them, so they are refused naming where they were.
- JSON nested deeper than MAX_JSON_DEPTH: refused with 400 before it is
  parsed (the parser would recurse once per level).
- A body that cannot be read (a malformed chunked encoding, a cut
  connection): 400, not an unhandled error.
- `Retry-After` only on 429 and 503.
"""

from __future__ import annotations

import json
import re

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from web.errors import error_body

MAX_JSON_DEPTH = 32
NUL = "\x00"
NUL_MESSAGE = "Must not contain NUL characters."
STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
BRACKETS = re.compile(rb"[\[\]{}]")
ESCAPED_NUL = re.compile(rb"\\u0000", re.IGNORECASE)
MAX_DIGITS = 100  # no number we take is longer; Python refuses to parse integers of over 4,300 digits
LONG_NUMBER = re.compile(rb"[0-9]{%d,}" % (MAX_DIGITS + 1))
RETRY_AFTER_STATUSES = {429, 503}


def register(app: Flask) -> None:
    """Register before the rate limiter, so `drop_retry_after` runs after it has added its headers."""
    app.url_map.merge_slashes = False  # `//path` is a 404 in JSON, not an HTML redirect
    app.before_request(refuse_bad_input)
    app.after_request(drop_retry_after)


def refuse_bad_input():
    if NUL in request.path:
        return _refuse(400, "the path must not contain NUL characters", {"path": [NUL_MESSAGE]})
    for location, pairs in (("query", request.args.items(multi=True)), ("headers", request.headers.items())):
        names = _nul_names(pairs)
        if names:
            return _refuse(422, f"NUL characters in the {location}", {location: dict.fromkeys(names, [NUL_MESSAGE])})
    try:
        if request.mimetype == "multipart/form-data":
            return _check_form()
        data = request.get_data(cache=True)
    except HTTPException:
        raise
    except Exception:  # noqa: BLE001  (the server's reader failed: a malformed chunked body, a cut connection)
        return _refuse(400, "the request body could not be read", {"body": ["Malformed or incomplete."]})
    if data and request.is_json:
        return _check_json(data)
    return None


def drop_retry_after(response):
    if response.status_code not in RETRY_AFTER_STATUSES:
        response.headers.pop("Retry-After", None)
    return response


def _refuse(code: int, message: str, errors: dict):
    return error_body(code, message, errors), code


def _nul_names(pairs) -> list[str]:
    return sorted({key.replace(NUL, "\\0") for key, value in pairs if NUL in key or NUL in value})


def _check_form():
    names = _nul_names(request.form.items(multi=True))
    files = sorted(field for field, upload in request.files.items(multi=True) if NUL in (upload.filename or ""))
    if names or files:
        errors = {"form": dict.fromkeys(names + files, [NUL_MESSAGE])}
        return _refuse(422, "NUL characters in the form", errors)
    return None


def _check_json(data: bytes):
    depth = _depth(data)
    if depth > MAX_JSON_DEPTH:
        return _refuse(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels", {"json": [f"Nested {depth} deep."]})
    if LONG_NUMBER.search(data) and LONG_NUMBER.search(STRINGS.sub(b"", data)):
        return _refuse(400, f"a number in the body has more than {MAX_DIGITS} digits", {"json": ["Number too long."]})
    if ESCAPED_NUL.search(data) is None:
        return None
    try:
        document = json.loads(data)
    except ValueError:
        return None  # the view's parser says what is wrong with it
    paths = sorted(_nul_paths(document, ""))
    if paths:
        return _refuse(422, "NUL characters in the body", {"json": dict.fromkeys(paths, [NUL_MESSAGE])})
    return None


def _depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects, counted without parsing (strings skipped)."""
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH:
        return 0
    depth = deepest = 0
    for bracket in BRACKETS.finditer(STRINGS.sub(b"", data)):
        depth += 1 if bracket.group() in (b"[", b"{") else -1
        if depth > deepest:
            deepest = depth
            if deepest > MAX_JSON_DEPTH:
                break
    return deepest


def _nul_paths(value, path: str):
    """The dotted paths (camelCase, as sent) of the strings holding NUL."""
    if isinstance(value, str):
        if NUL in value:
            yield path or "body"
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else key
            if NUL in key:
                yield name.replace(NUL, "\\0")
            else:
                yield from _nul_paths(item, name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, f"{path}.{index}" if path else str(index))
