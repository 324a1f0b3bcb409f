"""Test setup against the real PostgreSQL, RabbitMQ and Redis on their standard ports.

The suite gets its own database, RabbitMQ virtual host and Redis database,
so it never touches (or is disturbed by) a development `make run`. Workers
and beat run as real subprocesses; nothing runs in eager mode.

Two tiers. A module marked `pytestmark = pytest.mark.pure` needs none of the
three services: it gets no database, vhost or Redis set-up, and opening a
connection to them fails its test (`make test-fast` runs only this tier, with
the service URLs pointing at a closed port). Every other module is in the
service tier: `clean_state` (and through it the migrated database and the
vhost, once per run) is added to each of its tests when it is collected.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get("TEST_PG_SERVER", "postgresql+psycopg2://postgres@127.0.0.1:5432")
# TEST_NAME names the database and virtual host, so suites of two checkouts can run at once.
TEST_DB = VHOST = os.environ.get("TEST_NAME", "shop_test")
MAIL_DIR = Path(tempfile.mkdtemp(prefix="shop-mail-"))

# The suite's settings (Settings.from_env in the `settings` fixture), inherited by worker and beat subprocesses.
os.environ.update({
    "APP_ENV": "test",
    "DATABASE_URL": f"{PG_SERVER}/{TEST_DB}",
    "CELERY_BROKER_URL": os.environ.get("TEST_BROKER_URL", f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"),
    "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    "EMAIL_PROVIDER": "sandbox",
    "EMAIL_OUTBOX_DIR": str(MAIL_DIR),
    "EMAIL_RETRY_BACKOFF": "1",
    # A cut-off email attempt is settled by asking the provider after this many seconds (600 by default).
    "EMAIL_ACCEPTANCE_LAG": "1",
    "OUTBOX_SWEEP_INTERVAL": "1",
    "OUTBOX_REPUBLISH_AFTER": "1",
    "LOG_LEVEL": "INFO",
    # The suite makes far more calls per minute than a person; tests of the limits set their own.
    "RATE_LIMIT_DEFAULT": "100000 per minute",
    "RATE_LIMIT_AUTH": "100000 per minute",
    # Classic delayed-delivery queues hold about 84 fewer broker file handles than quorum ones (docs/faults.md).
    "CELERY_DELAYED_QUEUE_TYPE": os.environ.get("CELERY_DELAYED_QUEUE_TYPE", "classic"),
    # Workers serve no metrics port unless a test gives one (several suites share the machine).
    "WORKER_METRICS_PORT": "0",
})

import pytest  # noqa: E402
from kombu import Connection  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

import celeryconfig  # noqa: E402
from settings import Settings  # noqa: E402
from tests.helpers import Process, wait_for  # noqa: E402


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def _ready_vhost(settings: Settings) -> None:
    """The run's virtual host, reused when it is there and fits our queues, else made afresh.

    Creating and deleting a vhost of ~40 quorum queues is what wedges a shared
    broker (docs/faults.md), so a run reuses the one its TEST_NAME left and
    only purges it (clean_state); TEST_DROP_VHOST=1 deletes it after the run.
    """
    if "TEST_BROKER_URL" in os.environ:
        return
    if shutil.which("rabbitmqctl") is None:
        pytest.exit("rabbitmqctl is needed to create the test virtual host (or set TEST_BROKER_URL)")
    if not _vhost_fits(settings):
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", VHOST], capture_output=True, timeout=60)
        _rabbitmqctl("add_vhost", VHOST)
        _rabbitmqctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")


def _vhost_fits(settings: Settings) -> bool:
    """Whether the vhost exists and its queues have our arguments (declaring them changes nothing then)."""
    from kombu.transport.native_delayed_delivery import declare_native_delayed_delivery_exchanges_and_queues

    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=10) as conn:
            for queue in celeryconfig.make_task_queues(settings) + celeryconfig.make_dead_letter_queues(settings):
                queue.bind(conn.default_channel).declare()
            declare_native_delayed_delivery_exchanges_and_queues(conn, settings.CELERY_DELAYED_QUEUE_TYPE)
        return True
    except Exception:  # noqa: BLE001  (missing vhost, or queues declared with other arguments)
        return False


def _server_engine():
    return create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")


def _drop_database(name: str) -> None:
    engine = _server_engine()
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.hookimpl(tryfirst=True)
def pytest_collectstart(collector):
    """Put every module not marked `pure` in the service tier (before its tests compute their fixtures)."""
    if isinstance(collector, pytest.Module) and not _pure(collector):
        collector.add_marker(pytest.mark.usefixtures("clean_state"))


def _pure(module: pytest.Module) -> bool:
    try:
        module.obj  # noqa: B018  (importing applies the module's `pytestmark`)
    except BaseException:  # noqa: BLE001  (collecting the module reports the error itself)
        return False
    return module.get_closest_marker("pure") is not None


SERVICE_PORTS = {5432, 5672, 6379}


@pytest.fixture(autouse=True)
def no_services_in_pure_tests(request, monkeypatch):
    """A pure test that opens a connection to PostgreSQL, RabbitMQ or Redis fails, whatever the URLs say."""
    if request.node.get_closest_marker("pure") is None:
        return
    import socket

    import psycopg2

    def refused(what):
        raise AssertionError(f"a pure test connected to {what}; move it to a service-tier module")

    connect = socket.socket.connect

    def guarded(sock, address, *args):
        if isinstance(address, tuple) and len(address) >= 2 and address[1] in SERVICE_PORTS:
            refused(f"port {address[1]}")
        return connect(sock, address, *args)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(psycopg2, "connect", lambda *a, **k: refused("PostgreSQL"))


@pytest.fixture(scope="session")
def shop(settings):
    """This process's resources, built once by the composition root (tasks called in a test find them)."""
    from bootstrap import bootstrap

    shop = bootstrap(settings)
    yield shop
    shop.close()


@pytest.fixture
def current_shop(shop):
    """A task a test calls directly runs on the suite's resources, unless the test builds an app of its own."""
    shop.celery.set_current()
    return shop


@pytest.fixture
def celery_app(shop):
    """The suite's Celery app, to send tasks to the real workers."""
    return shop.celery


@pytest.fixture(scope="session")
def services(settings, shop):
    """The test database (migrated to head) and virtual host, for the whole run."""
    from web.cli import alembic_config, ensure_database
    from alembic import command

    _ready_vhost(settings)
    _drop_database(TEST_DB)
    ensure_database(settings.DATABASE_URL)
    command.upgrade(alembic_config(settings.DATABASE_URL), "head")
    yield
    shop.close()
    _drop_database(TEST_DB)
    shutil.rmtree(MAIL_DIR, ignore_errors=True)
    if os.environ.get("TEST_DROP_VHOST") == "1" and "TEST_BROKER_URL" not in os.environ:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", VHOST], capture_output=True, timeout=60)


TABLES = None


@pytest.fixture
def clean_state(settings, services, current_shop):
    """Each service-tier test starts with idle workers and empty tables, queues, mailbox and Redis database."""
    global TABLES
    wait_idle(settings, current_shop)
    engine = create_engine(settings.DATABASE_URL)
    with engine.begin() as conn:
        if TABLES is None:
            TABLES = [row[0] for row in conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"))]
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    purge_queues(settings)
    for path in MAIL_DIR.glob("*"):
        path.unlink()
    import redis
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    yield


def purge_queues(settings: Settings) -> None:
    queues = celeryconfig.make_task_queues(settings) + celeryconfig.make_dead_letter_queues(settings)
    with Connection(settings.CELERY_BROKER_URL) as conn:
        channel = conn.default_channel
        for queue in queues:
            queue.bind(channel).declare()
            channel.queue_purge(queue.name)


@pytest.fixture
def app(settings):
    from web import create_app

    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["shop"].relay.close()
    app.extensions["shop"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def mail_dir() -> Path:
    return MAIL_DIR


WORKERS: list[Process] = []  # every worker started on the suite's broker, for wait_idle
THREAD_POOL = "tasks.pools:ThreadPool"  # the Procfile's `orders` worker's pool
CONTROL = None


def start_worker(log_dir: Path, pool: str = "prefork", queues: tuple[str, ...] = celeryconfig.QUEUES,
                 **env) -> Process:
    """A real Celery worker consuming `queues` (every queue by default); `pool="threads"` runs its tasks in
    threads (tasks.pools.ThreadPool), as `make run`'s `orders` worker runs payments, emails and shipping."""
    if pool == "threads":
        pool, env = "custom", {"CELERY_CUSTOM_WORKER_POOL": THREAD_POOL, **env}
    command = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", ",".join(queues),
               "--pool", pool, "-c", "4" if pool == "custom" else "2", "--without-mingle", "--without-gossip",
               "-n", f"test-{os.getpid()}-{uuid.uuid4().hex[:6]}@%h"]
    process = Process(command, log_dir / "worker.log", env=env, ready="ready.").start()
    if "CELERY_BROKER_URL" not in env:
        WORKERS.append(process)
    return process


def wait_idle(settings: Settings, shop, timeout: float = 60.0) -> None:
    """Wait until the suite's running workers have nothing queued, reserved or running (twice in a row).

    A task still writing when the next test truncates its tables can deadlock
    with the TRUNCATE, so a test starts only once the previous one's follow-up
    tasks are done. Costs nothing when no worker runs.
    """
    global CONTROL
    WORKERS[:] = [process for process in WORKERS if process.proc.poll() is None]
    if not WORKERS:
        return
    if CONTROL is None:
        CONTROL = shop.celery.control
    control = CONTROL
    queues = celeryconfig.make_task_queues(settings)

    def idle() -> bool:
        inspect = control.inspect(timeout=5, limit=len(WORKERS))
        busy = [*(inspect.active() or {}).values(), *(inspect.reserved() or {}).values()]
        with Connection(settings.CELERY_BROKER_URL) as conn:
            waiting = sum(queue.bind(conn.default_channel).queue_declare(passive=True).message_count
                          for queue in queues)
        return not any(busy) and not waiting

    wait_for(lambda: idle() and idle(), timeout, interval=0.1, message="the workers to go idle")


def start_beat(log_dir: Path, **env) -> Process:
    command = [sys.executable, "-m", "celery", "-A", "tasks", "beat", "--schedule",
               str(log_dir / "beat-schedule"), "--loglevel", "INFO"]
    return Process(command, log_dir / "beat.log", env=env, ready="beat: Starting").start()


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    """One worker per test module, with the suite's settings."""
    process = start_worker(tmp_path_factory.mktemp("worker"))
    yield process
    process.stop()


@pytest.fixture(scope="session")
def s3_twin():
    """moto's S3 server on a loopback port, shared by the whole run (make buckets per test)."""
    from tests.twins.s3 import S3Twin

    twin = S3Twin().start()
    yield twin
    twin.stop()
