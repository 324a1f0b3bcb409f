"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`."""

from settings import get_settings

_settings = get_settings()

bind = f"{_settings.HOST}:{_settings.PORT}"
workers = _settings.WEB_CONCURRENCY
worker_class = "sync"
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = None  # the app writes one JSON line per request itself (web/middleware.py)
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "logconfig.ContextFilter"}},
    "formatters": {"json": {"()": "logconfig.json_formatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["context"],
                             "stream": "ext://sys.stdout"}},
    "loggers": {"gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
