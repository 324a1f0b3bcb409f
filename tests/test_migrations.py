"""The migrations build exactly the models' schema, and take it all away again."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

import models
from web.cli import alembic_config, ensure_database
from tests.conftest import PG_SERVER, TEST_DB, _drop_database

SCRATCH = f"{TEST_DB}_migrations"


def test_models_and_migrations_agree(settings):
    engine = create_engine(settings.DATABASE_URL)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                models.Base.metadata)
    engine.dispose()
    assert diff == []


def test_users_table_is_the_specs(settings):
    engine = create_engine(settings.DATABASE_URL)
    inspector = inspect(engine)
    columns = {c["name"]: c for c in inspector.get_columns("users")}
    assert list(columns) == ["id", "email", "password_hash", "first_name", "last_name", "role", "is_verified",
                             "created_at", "updated_at"]
    assert "gen_random_uuid()" in columns["id"]["default"]
    assert "customer" in columns["role"]["default"] and columns["is_verified"]["default"] == "false"
    assert all(not c["nullable"] for c in columns.values())
    assert {i["name"] for i in inspector.get_indexes("users")} >= {"idx_users_email", "idx_users_role"}
    assert [u["column_names"] for u in inspector.get_unique_constraints("users")] == [["email"]]
    engine.dispose()


def test_upgrade_from_empty_and_downgrade_to_nothing():
    url = f"{PG_SERVER}/{SCRATCH}"
    _drop_database(SCRATCH)
    ensure_database(url)
    try:
        config = alembic_config(url)
        command.upgrade(config, "head")
        engine = create_engine(url)
        expected = {"users", "orders", "outbox", "order_events", "product_variants"}
        assert expected <= set(inspect(engine).get_table_names())
        command.downgrade(config, "base")
        with engine.connect() as conn:
            tables = conn.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).all()
            types = conn.scalars(text("SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                                      "WHERE n.nspname = 'public' AND t.typtype = 'e'")).all()
        assert tables == ["alembic_version"] and types == []
        command.upgrade(config, "head")  # and it builds again on the emptied database
        engine.dispose()
    finally:
        _drop_database(SCRATCH)
