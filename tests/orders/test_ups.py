"""The UPS adapter through zeep against a local SOAP service speaking the same WSDLs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from integrations.errors import PermanentError, TransientError
from integrations.shipping.base import Parcel, Place
from integrations.shipping.ups import UpsShipping
from settings import ROOT
from tests.twins.ups import UpsTwin

ORIGIN = Place("Shop Warehouse", "1 Depot Road", "Atlanta", "GA", "30301", "US")
HOME = Place("Ada Lovelace", "12 Analytical Row", "New York", "NY", "10001", "US")


@pytest.fixture(scope="module")
def twin():
    with UpsTwin() as twin:
        yield twin


def ups(twin, password="secret") -> UpsShipping:  # noqa: S107
    return UpsShipping(ROOT / "integrations/shipping/wsdl", twin.url, "shop", password, "AK1", "A1B2C3", timeout=5)


def test_rates_label_and_tracking(twin):
    carrier = ups(twin)
    rates = carrier.rates(ORIGIN, HOME, Parcel(Decimal("1.5")))
    assert {(r.service, r.amount, r.days) for r in rates} >= {("ground", Decimal("6.50"), 5),
                                                             ("next_day_air", Decimal("29.00"), 1)}
    label = carrier.buy_label("shipment-1", "ground", ORIGIN, HOME, Parcel(Decimal("1.5")))
    assert label.content.startswith(b"GIF89a") and twin.labels[label.tracking_number] == "shipment-1"
    assert carrier.track(label.tracking_number).status == "in_transit"
    twin.delivered.add(label.tracking_number)
    assert carrier.track(label.tracking_number).delivered
    assert [path for path, _ in twin.calls] == ["/webservices/Rate", "/webservices/Ship", "/webservices/Track",
                                                "/webservices/Track"]


def test_a_soap_fault_is_a_permanent_error_with_ups_code(twin):
    with pytest.raises(PermanentError, match="111285 The postal code is invalid"):
        ups(twin).rates(ORIGIN, Place("X", "Y", "Z", "", "00000", "US"), Parcel(Decimal(1)))
    with pytest.raises(PermanentError, match="250003"):
        ups(twin, password="wrong").track("1Z")


def test_an_unavailable_carrier_is_transient(twin):
    twin.fail_next = 1
    with pytest.raises(TransientError, match="HTTP 503"):
        ups(twin).rates(ORIGIN, HOME, Parcel(Decimal(1)))


def test_an_order_ships_and_is_delivered_through_ups(celery_app, twin, app, client, people, make_variant, tmp_path):
    from tests.conftest import start_worker
    from tests.helpers import wait_for
    from tests.orders.conftest import ORDERS, place, status_of

    worker = start_worker(tmp_path, SHIPPING_PROVIDER="ups", UPS_ENDPOINT=twin.url, UPS_USERNAME="shop",
                          UPS_PASSWORD="secret", UPS_ACCESS_KEY="AK1", UPS_ACCOUNT_NUMBER="A1B2C3",
                          STORAGE_LOCAL_DIR=str(tmp_path / "storage"))
    try:
        _, headers = people["customer"]
        order_id = place(client, headers, make_variant(stock=1), 1).json["id"]
        client.post(f"{ORDERS}/{order_id}/pay", json={"paymentMethod": "sandbox_success"}, headers=headers)
        wait_for(lambda: status_of(app, order_id) == "processing", timeout=15, message="payment")
        client.post(f"{ORDERS}/{order_id}/shipments", json={"service": "2nd_day_air"}, headers=people["staff"][1])
        wait_for(lambda: status_of(app, order_id) == "shipped", timeout=15, message="the UPS label")
        [tracking] = [number for number, reference in twin.labels.items() if reference != "shipment-1"]
        assert list((tmp_path / "storage" / "labels").iterdir())[0].read_bytes().startswith(b"GIF89a")
        twin.delivered.add(tracking)
        celery_app.send_task("tasks.shipping.poll_tracking")
        wait_for(lambda: status_of(app, order_id) == "delivered", timeout=15, message="delivery")
    finally:
        worker.stop()


def test_a_failing_carrier_opens_the_breaker_and_the_task_retries_later(twin, app, client, people, make_variant,
                                                                       tmp_path):
    from tests.conftest import start_worker
    from tests.helpers import wait_for
    from tests.orders.conftest import ORDERS, place, status_of

    worker = start_worker(tmp_path, SHIPPING_PROVIDER="ups", UPS_ENDPOINT=twin.url, UPS_USERNAME="shop",
                          UPS_PASSWORD="secret", UPS_ACCESS_KEY="AK1", UPS_ACCOUNT_NUMBER="A1B2C3",
                          STORAGE_LOCAL_DIR=str(tmp_path / "storage"), BREAKER_FAIL_MAX="2",
                          BREAKER_RESET_TIMEOUT="3")
    try:
        _, headers = people["customer"]
        order_id = place(client, headers, make_variant(stock=1), 1).json["id"]
        client.post(f"{ORDERS}/{order_id}/pay", json={"paymentMethod": "sandbox_success"}, headers=headers)
        wait_for(lambda: status_of(app, order_id) == "processing", timeout=15, message="payment")
        twin.hits, twin.fail_next = 0, 2  # two 503s open the breaker; retries wait for it to let one through
        client.post(f"{ORDERS}/{order_id}/shipments", json={"service": "ground"}, headers=people["staff"][1])
        wait_for(lambda: status_of(app, order_id) == "shipped", timeout=60, message="the label after the outage")
        log = worker.log()
        assert log.index('"to": "open"') < log.index('"to": "half-open"') < log.index('"to": "closed"')
        assert "circuit open, try later" in log and "Retry in" in log
        assert twin.hits == 3  # two failures, then one trial call that bought the label: no hammering
    finally:
        worker.stop()
