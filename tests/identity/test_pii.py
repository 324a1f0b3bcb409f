"""PII at rest: names, phones and every address field are AES-256-GCM in the raw columns; keys rotate."""

import base64
import os
from decimal import Decimal

import pytest
from sqlalchemy import text

from models import crypto
from models.crypto import KeyRing
from models.orders.tables import BillingAddress, Order, ShippingAddress
from models.security.rotation import reencrypt_all
from settings import DEV_PII_KEYS
from tests.helpers import bearer
from tests.identity.conftest import rows

PII = {"first_name": "Grace", "last_name": "Hopperstein", "line1": "1 Navy Yard Lane", "line2": "Suite 42",
       "city": "Arlington", "region": "Virginia", "postal_code": "22202", "country": "US", "phone": "+1 555 0100"}
ADDRESS_COLUMNS = list(PII)


def _address_json():
    return {"firstName": PII["first_name"], "lastName": PII["last_name"], "line1": PII["line1"],
            "line2": PII["line2"], "city": PII["city"], "region": PII["region"], "postalCode": PII["postal_code"],
            "country": PII["country"], "phone": PII["phone"]}


def _place_order(db, user_id):
    with db.session() as session:
        order = Order(user_id=user_id, currency="EUR", subtotal=Decimal("1.00"), total=Decimal("1.00"))
        session.add(order)
        session.flush()
        for kind in (ShippingAddress, BillingAddress):
            session.add(kind(order_id=order.id, **PII))
    return order.id


@pytest.fixture
def stored(app, client, user_of, db):
    user = user_of(first_name=PII["first_name"], last_name=PII["last_name"])
    assert client.post("/api/v1/users/me/addresses", headers=bearer(app, user), json=_address_json()).status_code == 201
    _place_order(db, user.id)
    return user


def _raw(db, table, columns):
    return rows(db, f"SELECT {', '.join(columns)} FROM {table}")  # noqa: S608


def test_no_plaintext_in_the_raw_columns(stored, db, app, client):
    tables = {"users": ["first_name", "last_name"], "addresses": ADDRESS_COLUMNS,
              "shipping_addresses": ADDRESS_COLUMNS, "billing_addresses": ADDRESS_COLUMNS}
    for table, columns in tables.items():
        [values] = _raw(db, table, columns)
        for column, value in zip(columns, values, strict=True):
            assert value.startswith("dev:") and KeyRing.parse(DEV_PII_KEYS).decrypt(value) == PII[column]
    dump = " ".join(str(row) for table in tables for row in _raw(db, table, ["*"]))
    # (Two-letter values such as the country can occur in base64 by chance; the prefix check covers them.)
    assert [value for value in PII.values() if len(value) > 4 and value in dump] == []
    # ...while the API reads them back.
    me = client.get("/api/v1/users/me/addresses", headers=bearer(app, stored)).json["items"][0]
    assert me["line1"] == PII["line1"] and me["phone"] == PII["phone"]


def test_rotation_adds_a_key_then_reencrypts_everything(stored, db, make_app):
    new_key = base64.b64encode(os.urandom(32)).decode()
    app = make_app(PII_KEYS=f"k2:{new_key},{DEV_PII_KEYS}")
    result = app.test_cli_runner().invoke(args=["security", "reencrypt", "--batch", "1"])
    assert result.exit_code == 0, result.output
    assert "addresses: 1 rows re-encrypted" in result.output and "users: 1 rows re-encrypted" in result.output
    for table, columns in {"users": ["first_name", "last_name"], "shipping_addresses": ADDRESS_COLUMNS}.items():
        [values] = _raw(db, table, columns)
        assert all(value.startswith("k2:") for value in values)
    # The old key can go now.
    crypto.configure(KeyRing.parse(f"k2:{new_key}"))
    try:
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM users")).scalar() == 1
        with app.extensions["shop"].db.session() as session:
            from models.users.tables import User
            assert session.query(User).one().last_name == PII["last_name"]
        assert reencrypt_all(app.extensions["shop"].db) == {
            "users": 0, "addresses": 0, "totp_credentials": 0, "shipping_addresses": 0, "billing_addresses": 0}
    finally:
        crypto.configure(KeyRing.parse(DEV_PII_KEYS))


def test_the_migration_encrypts_existing_rows_and_its_downgrade_decrypts_them():
    from alembic import command
    from sqlalchemy import create_engine

    from tests.conftest import PG_SERVER, TEST_DB, _drop_database
    from web.cli import alembic_config, ensure_database

    name = f"{TEST_DB}_pii_migration"
    url = f"{PG_SERVER}/{name}"
    _drop_database(name)
    ensure_database(url)
    engine = create_engine(url)
    try:
        config = alembic_config(url)
        command.upgrade(config, "0001")
        with engine.begin() as conn:
            user_id = conn.execute(text("INSERT INTO users (email, password_hash, first_name, last_name) "
                                        "VALUES ('ada@example.com', 'x', 'Ada', 'Lovelace') RETURNING id")).scalar()
            conn.execute(text("INSERT INTO addresses (user_id, first_name, last_name, line1, city, postal_code, "
                              "country) VALUES (:u, 'Ada', 'Lovelace', '1 Analytical Row', 'London', 'N1', 'GB')"),
                         {"u": user_id})
        command.upgrade(config, "0002")
        ring = KeyRing.parse(DEV_PII_KEYS)
        with engine.connect() as conn:
            first, line1, country = conn.execute(text(
                "SELECT u.first_name, a.line1, a.country FROM users u JOIN addresses a ON a.user_id = u.id")).one()
        assert [ring.decrypt(v) for v in (first, line1, country)] == ["Ada", "1 Analytical Row", "GB"]
        assert "Ada" not in first and "Analytical" not in line1
        command.downgrade(config, "0001")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT u.first_name, a.line1, a.country FROM users u "
                                     "JOIN addresses a ON a.user_id = u.id")).one() == ("Ada", "1 Analytical Row", "GB")
    finally:
        engine.dispose()
        _drop_database(name)
