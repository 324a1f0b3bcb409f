"""JSON-lines logging shared by the web and worker processes.

Every record carries the request id of the HTTP request (or of the request
that queued the running task), so one id follows a change from the API call
through the outbox into the worker.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar

from gunicorn import glogging
from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
task_id_var: ContextVar[str | None] = ContextVar("task_id", default=None)

FIELDS = ["asctime", "levelname", "name", "message"]

# Last line of defence: whatever a log line carries, emails leave masked and credentials not at all.
EMAIL = re.compile(r"([A-Za-z0-9_%+\-])[A-Za-z0-9._%+\-]*@([A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+)")
JWT = re.compile(r"eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*")
API_KEY = re.compile(r"(shk_[0-9a-f]{8})_[\w-]+")
SECRET_FIELD = re.compile(
    r'("[\w-]*(?:password|token|secret|authorization|api[_-]?key|code)[\w-]*"\s*:\s*)"(?:[^"\\]|\\.)*"',
    re.IGNORECASE)
BEARER = re.compile(r"(Bearer\s+)[\w.~+/=-]+")


# Words one of which a SECRET_FIELD match must hold (in any case): most lines hold none, and a substring test
# costs a fraction of the case-blind scan of every key.
SECRET_WORDS = ("password", "token", "secret", "authorization", "apikey", "api_key", "api-key", "code")


def mask_secrets(line: str) -> str:
    """Mask emails (`j***@example.com`) and redact tokens, keys and secret-named fields.

    Each pattern runs only on a line holding the text it cannot match without (most lines, an access line
    say, hold none of them): the same result for about a tenth of the time."""
    folded = line.casefold()  # as the case-blind match folds (the long s, the Kelvin sign)
    if any(word in folded for word in SECRET_WORDS):
        line = SECRET_FIELD.sub(r'\1"[redacted]"', line)
    if "eyJ" in line:
        line = JWT.sub("[token]", line)
    if "Bearer" in line:
        line = BEARER.sub(r"\1[token]", line)
    if "shk_" in line:
        line = API_KEY.sub(r"\1_[redacted]", line)
    return EMAIL.sub(r"\1***@\2", line) if "@" in line else line


class MaskingJsonFormatter(JsonFormatter):
    """JSON lines with `mask_secrets` applied."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


class ContextFilter(logging.Filter):
    """Stamps each record with the current request and task ids."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        if getattr(record, "task_id", None) is None:
            record.task_id = task_id_var.get()
        return True


def json_formatter() -> logging.Formatter:
    return MaskingJsonFormatter(
        FIELDS,
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        json_default=str,
    )


def configure_logging(level: str = "INFO", stream=None) -> None:
    """Send every logger's records to one JSON-lines handler on `stream` (stdout)."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(json_formatter())
    handler.addFilter(ContextFilter())
    handler.shop_json = True
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "shop_json", False) or type(h) is logging.StreamHandler]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("amqp", "kombu", "urllib3", "botocore", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


class GunicornLogger(glogging.Logger):
    """gunicorn's logger (`logger_class` in gunicorn.conf.py), with its access log off while `accesslog` is None.

    gunicorn counts its access log as on whenever `logconfig_dict` is set,
    which we set only to write gunicorn.error as JSON; it then builds the
    access-log fields of every request (some twenty atoms: header lookups,
    a strftime, the environ copied) for a logger with no handler, about 2 %
    of a worker's CPU. The app writes its own line per request
    (web/middleware.py); set `accesslog` to have gunicorn's as well.
    """

    @property
    def access_log_enabled(self) -> bool:
        return self.cfg.accesslog is not None

    def access(self, resp, req, environ, request_time) -> None:
        if self.cfg.accesslog is None:
            return
        super().access(resp, req, environ, request_time)
