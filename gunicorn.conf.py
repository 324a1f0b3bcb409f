"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`."""

import os
import shutil

from settings import get_settings

_settings = get_settings()

# Prometheus samples of every worker process go here and /metrics sums them.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_settings.path("var/prometheus")))

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


def on_starting(server):
    """Start each run with an empty metrics folder."""
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
