"""Operational commands: `flask services check` and `flask db ensure`."""

from __future__ import annotations

import sys

import click
from alembic import command
from alembic.config import Config
from flask import Flask
from flask.cli import AppGroup
from kombu.utils.url import maybe_sanitize_url, url_to_parts
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from settings import ROOT
from web.extensions import runtime
from web.health import CHECKS, check_services

HOW_TO_START = {
    "postgresql": "start it with `pg_ctlcluster 15 main start` or `docker compose up -d postgres`",
    "rabbitmq": "start it with `rabbitmq-server -detached` or `docker compose up -d rabbitmq`",
    "redis": "start it with `redis-server --daemonize yes` or `docker compose up -d redis`",
}


def _what_to_do(name: str, result: str, url: str, settings) -> str:
    """The line `services check` prints for a service that failed its check: unreachable (start it), or up
    but refusing this app (RabbitMQ without the URL's virtual host, or refusing its login)."""
    first = result.splitlines()[0]
    if name == "rabbitmq" and result.startswith("NotAllowed:") and "vhost" in result:
        broker = url_to_parts(settings.CELERY_BROKER_URL)
        vhost = broker.path or "/"
        return (f"rabbitmq answers at {url} but has no virtual host {vhost!r} ({first}); create it with "
                f"`rabbitmqctl add_vhost {vhost}` and `rabbitmqctl set_permissions -p {vhost} "
                f"{broker.username or 'guest'} '.*' '.*' '.*'`")
    if name == "rabbitmq" and result.startswith("AccessRefused:"):
        return (f"rabbitmq answers at {url} but refused the login ({first}); check the user and password in "
                f"CELERY_BROKER_URL")
    return f"{name} is not reachable at {url} ({first}); {HOW_TO_START[name]}"


def server_url(database_url: str):
    """The same server, its `postgres` maintenance database."""
    return make_url(database_url).set(database="postgres")


def _postgresql_server(rt) -> None:
    engine = create_engine(server_url(rt.settings.DATABASE_URL),
                           connect_args={"connect_timeout": max(1, int(rt.settings.SERVICE_TIMEOUT))})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def ensure_database(database_url: str) -> bool:
    """Create the database if it is missing; True when it was created."""
    url = make_url(database_url)
    engine = create_engine(server_url(database_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}):
                return False
            conn.execute(text(f'CREATE DATABASE "{url.database}"'))
            return True
    finally:
        engine.dispose()


def register(app: Flask) -> None:
    services = AppGroup("services", help="The services this app needs.")
    database = AppGroup("db", help="The database and its migrations.")

    @services.command("check")
    def services_check():
        """One line per service that cannot be reached, and how to start it."""
        rt = runtime()
        urls = {"postgresql": server_url(rt.settings.DATABASE_URL).render_as_string(hide_password=True),
                "rabbitmq": maybe_sanitize_url(rt.settings.CELERY_BROKER_URL),
                "redis": maybe_sanitize_url(rt.settings.REDIS_URL)}
        results = check_services(rt, {**CHECKS, "postgresql": _postgresql_server})
        down = {name: result for name, result in results.items() if result != "ok"}
        for name, result in down.items():
            click.echo(_what_to_do(name, result, urls[name], rt.settings), err=True)
        if down:
            sys.exit(1)
        click.echo("postgresql, rabbitmq and redis are reachable")

    @database.command("ensure")
    def db_ensure():
        """Create the database if missing, then migrate it to the newest revision."""
        url = runtime().settings.DATABASE_URL
        if ensure_database(url):
            click.echo(f"created database {make_url(url).database}")
        command.upgrade(alembic_config(url), "head")
        click.echo("database is at the newest migration")

    app.cli.add_command(services)
    app.cli.add_command(database)
    register_security(app)
    from web.orders.cli import orders_cli
    app.cli.add_command(orders_cli)
    from web.retention import retention_cli
    app.cli.add_command(retention_cli)





def register_security(app: Flask) -> None:
    security = AppGroup("security", help="Keys and secrets.")

    @security.command("reencrypt")
    @click.option("--batch", default=500, show_default=True, help="rows per transaction")
    def reencrypt(batch):
        """Re-seal every encrypted column with the active PII key (run after adding a key to PII_KEYS)."""
        from models.security.rotation import reencrypt_all

        for table, count in reencrypt_all(runtime().db, batch).items():
            click.echo(f"{table}: {count} rows re-encrypted")

    @security.command("unlock")
    @click.argument("email")
    def unlock(email):
        """Lift the sign-in lockout of EMAIL before it expires (recorded as a security event)."""
        from models.users.auth import lift_lockout
        from models.users.permissions import SYSTEM

        with runtime().db.session() as session:
            locked = lift_lockout(session, runtime().redis, SYSTEM, email)
        click.echo("lockout lifted" if locked else "no lockout or failures were in force; recorded anyway")

    app.cli.add_command(security)
