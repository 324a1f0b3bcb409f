"""The pure tier cannot reach PostgreSQL, RabbitMQ or Redis, and gets none of the service tier's set-up."""

import socket

import pytest
from sqlalchemy import create_engine

pytestmark = pytest.mark.pure


def test_a_pure_test_gets_no_service_fixtures(request):
    assert not {"services", "clean_state"} & set(request.fixturenames)


@pytest.mark.parametrize("port", [5432, 5672, 6379])
def test_a_pure_test_cannot_open_a_socket_to_a_service(port):
    with pytest.raises(AssertionError, match="a pure test connected to port"):
        socket.create_connection(("127.0.0.1", port), timeout=1)


def test_a_pure_test_cannot_reach_the_database(settings):
    engine = create_engine(settings.DATABASE_URL)
    try:
        with pytest.raises(AssertionError, match="a pure test connected to PostgreSQL"):
            engine.connect()
    finally:
        engine.dispose()
