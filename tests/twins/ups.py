"""A UPS SOAP twin on loopback: Rate, Ship and Track answered from the same WSDLs' messages.

A plain WSGI app reads the SOAP envelope with lxml, checks the UPSSecurity
header, and answers document/literal bodies (or a SOAP fault carrying UPS's
Errors detail). Destination postal code `00000` gets UPS's invalid-address
fault; `fail_next` answers HTTP 503 that many times.
"""

from __future__ import annotations

import base64
import threading
import time

from lxml import etree
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.twins.loopback import LoopbackServer

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
UPSS = "http://www.ups.com/XMLSchema/XOLTWS/UPSS/v1.0"
COMMON = "http://www.ups.com/XMLSchema/XOLTWS/Common/v1.0"
ERR = "http://www.ups.com/XMLSchema/XOLTWS/Error/v1.1"
NS = {"rate": "http://www.ups.com/XMLSchema/XOLTWS/Rate/v1.1", "ship": "http://www.ups.com/XMLSchema/XOLTWS/Ship/v1.0",
      "trk": "http://www.ups.com/XMLSchema/XOLTWS/Track/v2.0"}
PRICES = {"03": ("6.50", "5"), "12": ("11.00", "3"), "02": ("17.00", "2"), "01": ("29.00", "1")}
GIF = base64.b64encode(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;").decode()


def envelope(body: str) -> bytes:
    return (f'<soapenv:Envelope xmlns:soapenv="{SOAP}"><soapenv:Body>{body}</soapenv:Body>'
            f"</soapenv:Envelope>").encode()


def ok(prefix: str) -> str:
    return (f'<common:Response xmlns:common="{COMMON}"><common:ResponseStatus><common:Code>1</common:Code>'
            f"<common:Description>Success</common:Description></common:ResponseStatus></common:Response>")


def fault(code: str, description: str) -> bytes:
    return envelope(
        f"<soapenv:Fault><faultcode>Client</faultcode><faultstring>An exception has been raised as a result of "
        f'client data.</faultstring><detail><err:Errors xmlns:err="{ERR}"><err:ErrorDetail>'
        f"<err:Severity>Hard</err:Severity><err:PrimaryErrorCode><err:Code>{code}</err:Code>"
        f"<err:Description>{description}</err:Description></err:PrimaryErrorCode></err:ErrorDetail></err:Errors>"
        f"</detail></soapenv:Fault>")


class UpsTwin(LoopbackServer):
    def __init__(self, username: str = "shop", password: str = "secret", access_key: str = "AK1"):  # noqa: S107
        self.credentials = (username, password, access_key)
        self.calls: list[tuple[str, str]] = []  # (path, operation)
        self.labels: dict[str, str] = {}  # tracking number -> our reference
        self.delivered: set[str] = set()
        self.fail_next = 0
        self.hits = 0  # every HTTP request, failed ones included
        self._lock = threading.Lock()
        self._listen(make_server("127.0.0.1", 0, self._app, threaded=True))
        self.url = f"{self.base_url}/webservices"

    def _app(self, environ, start_response):
        request = Request(environ)
        status, body = self._handle(request)
        return Response(body, status, content_type="text/xml; charset=utf-8")(environ, start_response)

    def _handle(self, request: Request) -> tuple[int, bytes]:
        with self._lock:
            self.hits += 1
            if self.fail_next:
                self.fail_next -= 1
                return 503, b"Service Unavailable"
        doc = etree.fromstring(request.get_data())
        operation = doc.find(f"{{{SOAP}}}Body")[0]
        self.calls.append((request.path, etree.QName(operation).localname))
        security = doc.find(f".//{{{UPSS}}}UPSSecurity")
        given = tuple(security.findtext(f".//{{{UPSS}}}{name}") for name in
                      ("Username", "Password", "AccessLicenseNumber")) if security is not None else ()
        if given != self.credentials:
            return 500, fault("250003", "Invalid Access License number")
        handler = {"RateRequest": self._rate, "ShipmentRequest": self._ship, "TrackRequest": self._track}
        return 200, handler[etree.QName(operation).localname](operation)

    @staticmethod
    def _postal_code(operation, prefix: str) -> str:
        return operation.findtext(f".//{{{NS[prefix]}}}ShipTo/{{{COMMON}}}Address/{{{COMMON}}}PostalCode") or ""

    def _rate(self, operation) -> bytes:
        if self._postal_code(operation, "rate") == "00000":
            return fault("111285", "The postal code is invalid for the state or country.")
        rated = "".join(
            f"<rate:RatedShipment><rate:Service><common:Code>{code}</common:Code></rate:Service>"
            f"<rate:TotalCharges><rate:CurrencyCode>USD</rate:CurrencyCode><rate:MonetaryValue>{price}"
            f"</rate:MonetaryValue></rate:TotalCharges><rate:GuaranteedDelivery><rate:BusinessDaysInTransit>"
            f"{days}</rate:BusinessDaysInTransit></rate:GuaranteedDelivery></rate:RatedShipment>"
            for code, (price, days) in PRICES.items())
        return envelope(f'<rate:RateResponse xmlns:rate="{NS["rate"]}" xmlns:common="{COMMON}">{ok("rate")}'
                        f"{rated}</rate:RateResponse>")

    def _ship(self, operation) -> bytes:
        if self._postal_code(operation, "ship") == "00000":
            return fault("120802", "The Ship To address is invalid.")
        reference = operation.findtext(f".//{{{NS['ship']}}}ReferenceNumber/{{{NS['ship']}}}Value") or ""
        tracking = f"1Z999AA1{int(time.time() * 1000) % 10**10:010d}"
        self.labels[tracking] = reference
        return envelope(
            f'<ship:ShipmentResponse xmlns:ship="{NS["ship"]}" xmlns:common="{COMMON}">{ok("ship")}'
            f"<ship:ShipmentResults><ship:ShipmentIdentificationNumber>{tracking}</ship:ShipmentIdentificationNumber>"
            f"<ship:PackageResults><ship:TrackingNumber>{tracking}</ship:TrackingNumber><ship:ShippingLabel>"
            f"<ship:ImageFormat><common:Code>GIF</common:Code></ship:ImageFormat><ship:GraphicImage>{GIF}"
            f"</ship:GraphicImage></ship:ShippingLabel></ship:PackageResults></ship:ShipmentResults>"
            f"</ship:ShipmentResponse>")

    def _track(self, operation) -> bytes:
        number = operation.findtext(f"{{{NS['trk']}}}InquiryNumber")
        if number not in self.labels:
            return fault("151018", "Invalid tracking number")
        kind, text = ("D", "DELIVERED") if number in self.delivered else ("I", "ORIGIN SCAN")
        return envelope(
            f'<trk:TrackResponse xmlns:trk="{NS["trk"]}" xmlns:common="{COMMON}">{ok("trk")}<trk:Shipment>'
            f"<trk:Package><trk:TrackingNumber>{number}</trk:TrackingNumber><trk:Activity><trk:Status>"
            f"<trk:Type>{kind}</trk:Type><trk:Description>{text}</trk:Description></trk:Status></trk:Activity>"
            f"</trk:Package></trk:Shipment></trk:TrackResponse>")
