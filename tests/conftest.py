"""Test setup against the real PostgreSQL, RabbitMQ and Redis on their standard ports.

The suite gets its own database, RabbitMQ virtual host and Redis database,
so it never touches (or is disturbed by) a development `make run`. Workers
and beat run as real subprocesses; nothing runs in eager mode.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get("TEST_PG_SERVER", "postgresql+psycopg2://postgres@127.0.0.1:5432")
# TEST_NAME names the database and virtual host, so suites of two checkouts can run at once.
TEST_DB = VHOST = os.environ.get("TEST_NAME", "shop_test")
MAIL_DIR = Path(tempfile.mkdtemp(prefix="shop-mail-"))

# Set before anything reads settings: tasks and celeryconfig read them at import.
os.environ.update({
    "APP_ENV": "test",
    "DATABASE_URL": f"{PG_SERVER}/{TEST_DB}",
    "CELERY_BROKER_URL": os.environ.get("TEST_BROKER_URL", f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"),
    "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    "EMAIL_PROVIDER": "sandbox",
    "EMAIL_OUTBOX_DIR": str(MAIL_DIR),
    "EMAIL_RETRY_BACKOFF": "1",
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
from tests.helpers import Process  # noqa: E402


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


@pytest.fixture(scope="session", autouse=True)
def services(settings):
    """The test database (migrated to head) and virtual host, for the whole run."""
    from web.cli import alembic_config, ensure_database
    from alembic import command

    _ready_vhost(settings)
    _drop_database(TEST_DB)
    ensure_database(settings.DATABASE_URL)
    command.upgrade(alembic_config(settings.DATABASE_URL), "head")
    yield
    from tasks import runtime
    if runtime.relay.cache_info().currsize:
        runtime.database().dispose()
    _drop_database(TEST_DB)
    shutil.rmtree(MAIL_DIR, ignore_errors=True)
    if os.environ.get("TEST_DROP_VHOST") == "1" and "TEST_BROKER_URL" not in os.environ:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", VHOST], capture_output=True, timeout=60)


TABLES = None


@pytest.fixture(autouse=True)
def clean_state(settings):
    """Each test starts with empty tables, queues, mailbox and Redis database."""
    global TABLES
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
    app.extensions["shop"].db.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def mail_dir() -> Path:
    return MAIL_DIR


def start_worker(log_dir: Path, **env) -> Process:
    """A real Celery worker consuming every queue, as `make run` starts it."""
    command = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", ",".join(celeryconfig.QUEUES),
               "-c", "2", "--without-mingle", "--without-gossip", "-n", f"test-{os.getpid()}@%h"]
    return Process(command, log_dir / "worker.log", env=env, ready="ready.").start()


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
