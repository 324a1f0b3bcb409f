"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`."""

import json
import os
import shutil

from gunicorn import util

from settings import get_settings

_settings = get_settings()

# Prometheus samples of every worker process go here and /metrics sums them.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_settings.path("var/prometheus")))

bind = f"{_settings.HOST}:{_settings.PORT}"
workers = _settings.WEB_CONCURRENCY
# gthread (docs/load.md): each worker's main thread holds the idle keep-alive connections and WEB_THREADS
# threads run requests; gevent: one greenlet per connection, requests included, all in one thread;
# sync serves one request per process and closes every connection after it.
worker_class = _settings.WEB_WORKER_CLASS
threads = _settings.WEB_THREADS if worker_class == "gthread" else 1  # more than 1 would turn sync into gthread
# Connections per worker (gthread and gevent); more wait in the listen backlog. Under gevent each is a greenlet
# that may run a request: beyond the database pool (DATABASE_POOL_SIZE + twice as many) they wait for a connection.
worker_connections = _settings.WEB_WORKER_CONNECTIONS
backlog = 2048
# gunicorn's control socket (gunicornc) sits at one path per user ($XDG_RUNTIME_DIR or ~/.gunicorn/gunicorn.ctl):
# a second server of the same user on the machine (tests, benchmarks, a second app) took it over. Off: the
# master is managed with signals (HUP reload, TTIN/TTOU workers, TERM stop) and the pods by Kubernetes.
control_socket_disable = True
timeout = 30
graceful_timeout = 20
# Seconds an idle keep-alive connection stays open (gthread): longer than a client's pause between two
# requests, and than a load balancer's idle timeout (60 s is common), so neither finds it closed under it.
keepalive = _settings.WEB_KEEPALIVE
accesslog = None  # the app writes one JSON line per request itself (web/middleware.py)
# gunicorn's own treats the access log as on once logconfig_dict is set, and computes its fields per request.
logger_class = "logconfig.GunicornLogger"
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


def post_fork(server, worker):
    """gevent: psycopg2 waits for PostgreSQL through gevent's hub (psycogreen), so a query blocks its greenlet,
    not the process. The worker then monkey-patches the standard library itself (sockets for Redis and
    RabbitMQ, threads, locks and queues for the outbox publisher and the pools), before the app is loaded."""
    if worker_class != "gevent":
        return
    import gevent
    import psycopg2
    from psycopg2 import extensions
    from psycogreen.gevent import gevent_wait_callback

    def wait(conn, timeout=None):
        """psycogreen's callback, keeping the URL's connect_timeout: libpq ignores it for the non-blocking
        connection a wait callback makes, so a database that accepted and stayed silent held the request."""
        if conn.status == extensions.STATUS_SETUP:
            limit = int(extensions.parse_dsn(conn.dsn).get("connect_timeout") or 0)
            if limit > 0:
                with gevent.Timeout(max(2, limit), psycopg2.OperationalError("timeout expired")):  # libpq's minimum
                    return gevent_wait_callback(conn, timeout)
        return gevent_wait_callback(conn, timeout)

    extensions.set_wait_callback(wait)


def worker_exit(server, worker):
    """A stopping worker publishes what its outbox publisher still holds (OUTBOX_FLUSH_SECONDS at most)."""
    from models.publishing import close_all

    close_all()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


# What gunicorn answers itself, before the app runs (a request line or header too
# long or malformed): API.md's JSON error shape with the app's security headers
# (web/browser.py), instead of an HTML page. Workers are forked from this process,
# so they use it too.
REFUSAL_HEADERS = ("Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"
                   "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
                   "X-Frame-Options: DENY\r\nCache-Control: no-store\r\n")


def write_json_error(sock, status_int, reason, mesg):
    body = json.dumps({"code": status_int, "status": reason, "message": mesg, "errors": {}}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{REFUSAL_HEADERS}\r\n")
    util.write_nonblock(sock, head.encode("latin1") + body)


util.write_error = write_json_error
