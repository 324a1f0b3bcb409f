"""UPS rating, shipping (labels) and tracking over SOAP with zeep, from the WSDLs in `wsdl/`."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import requests
from zeep import Client, Settings
from zeep.exceptions import Fault, TransportError
from zeep.transports import Transport

from integrations.errors import PermanentError, TransientError
from integrations.shipping.base import Label, Parcel, Place, Rate, Tracking

SERVICES = {"ground": "03", "3_day_select": "12", "2nd_day_air": "02", "next_day_air": "01"}
SERVICE_NAMES = {code: name for name, code in SERVICES.items()}
TRACKING_STATUS = {"D": "delivered", "I": "in_transit", "M": "in_transit", "P": "in_transit", "X": "exception"}
# UPS error codes that mean "try again later" (system unavailable, busy).
TRANSIENT_CODES = {"190001", "190002", "190100", "250002"}


class UpsShipping:
    name = "ups"

    def __init__(self, wsdl_dir: Path, endpoint: str, username: str, password: str, access_key: str,
                 account: str, timeout: float = 10.0):
        transport = Transport(session=requests.Session(), timeout=timeout, operation_timeout=timeout)
        settings = Settings(strict=True)  # a non-XML error page must fail as a TransportError
        self.clients = {name: Client(str(Path(wsdl_dir) / f"{name}.wsdl"), transport=transport, settings=settings)
                        for name in ("RateWS", "Ship", "Track")}
        self.endpoint = endpoint.rstrip("/")
        self.account = account
        self.security = {"UsernameToken": {"Username": username, "Password": password},
                         "ServiceAccessToken": {"AccessLicenseNumber": access_key}}

    def _call(self, wsdl: str, service: str, operation: str, **body):
        client = self.clients[wsdl]
        binding = next(iter(client.wsdl.bindings))
        proxy = client.create_service(binding, f"{self.endpoint}/{service}")
        try:
            return getattr(proxy, operation)(_soapheaders={"UPSSecurity": self.security}, **body)
        except Fault as fault:
            code, description = _fault_detail(fault)
            kind = TransientError if code in TRANSIENT_CODES else PermanentError
            raise kind(f"ups {operation}: {code} {description}") from fault
        except TransportError as exc:
            kind = TransientError if exc.status_code >= 500 or exc.status_code == 429 else PermanentError
            raise kind(f"ups {operation}: HTTP {exc.status_code}") from exc
        except requests.RequestException as exc:
            raise TransientError(f"ups {operation}: {exc}") from exc

    def _parties(self, origin: Place, destination: Place) -> dict:
        return {"Shipper": {**_party(origin), "ShipperNumber": self.account}, "ShipTo": _party(destination),
                "ShipFrom": _party(origin)}

    def rates(self, origin: Place, destination: Place, parcel: Parcel) -> list[Rate]:
        response = self._call("RateWS", "Rate", "ProcessRate", Request={"RequestOption": ["Shop"]},
                              Shipment={**self._parties(origin, destination), "Package": [_package(parcel)]})
        return [Rate(SERVICE_NAMES.get(rated.Service.Code, rated.Service.Code),
                     Decimal(rated.TotalCharges.MonetaryValue), rated.TotalCharges.CurrencyCode,
                     int(rated.GuaranteedDelivery.BusinessDaysInTransit) if rated.GuaranteedDelivery else None)
                for rated in response.RatedShipment or []]

    def buy_label(self, shipment_id: str, service: str, origin: Place, destination: Place,
                  parcel: Parcel) -> Label:
        if service not in SERVICES:
            raise PermanentError(f"ups: unknown service {service!r}")
        response = self._call(
            "Ship", "Ship", "ProcessShipment", Request={"RequestOption": ["nonvalidate"]},
            Shipment={"Description": "Order", **self._parties(origin, destination),
                      "PaymentInformation": {"ShipmentCharge": {"Type": "01",
                                                                "BillShipper": {"AccountNumber": self.account}}},
                      "Service": {"Code": SERVICES[service]}, "ReferenceNumber": {"Value": shipment_id[:35]},
                      "Package": [_package(parcel)]},
            LabelSpecification={"LabelImageFormat": {"Code": "GIF"}})
        package = response.ShipmentResults.PackageResults[0]
        return Label(package.TrackingNumber, package.ShippingLabel.GraphicImage, "image/gif")

    def track(self, tracking_number: str) -> Tracking:
        response = self._call("Track", "Track", "ProcessTrack", Request={"RequestOption": ["0"]},
                              InquiryNumber=tracking_number)
        packages = response.Shipment.Package if response.Shipment else []
        activity = packages[0].Activity[0] if packages and packages[0].Activity else None
        if activity is None:
            return Tracking(tracking_number, "in_transit", "No activity yet")
        return Tracking(tracking_number, TRACKING_STATUS.get(activity.Status.Type, "in_transit"),
                        activity.Status.Description or "")


def _party(place: Place) -> dict:
    return {"Name": place.name[:35], "Address": {
        "AddressLine": [place.line1][:3], "City": place.city, "StateProvinceCode": place.region or None,
        "PostalCode": place.postal_code, "CountryCode": place.country}}


def _package(parcel: Parcel) -> dict:
    return {"PackagingType": {"Code": "02"},
            "Dimensions": {"UnitOfMeasurement": {"Code": "CM"}, "Length": str(parcel.length_cm),
                           "Width": str(parcel.width_cm), "Height": str(parcel.height_cm)},
            "PackageWeight": {"UnitOfMeasurement": {"Code": "KGS"}, "Weight": str(parcel.weight_kg)}}


def _fault_detail(fault: Fault) -> tuple[str, str]:
    """UPS's error code and description from the fault's Errors detail (or the fault string)."""
    ns = {"err": "http://www.ups.com/XMLSchema/XOLTWS/Error/v1.1"}
    if fault.detail is not None:
        code = fault.detail.findtext(".//err:PrimaryErrorCode/err:Code", namespaces=ns)
        description = fault.detail.findtext(".//err:PrimaryErrorCode/err:Description", namespaces=ns)
        if code:
            return code, description or ""
    return "", fault.message or ""
