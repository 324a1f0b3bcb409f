"""The PII key ring: authenticated encryption, refused key specs, and production's refusal of the dev ring."""

import base64

import pytest

from models.crypto import KeyRing, KeyRingError
from settings import DEV_PII_KEYS

pytestmark = pytest.mark.pure


def test_equal_values_encrypt_differently_and_tampering_is_detected():
    ring = KeyRing.parse(DEV_PII_KEYS)
    one, two = ring.encrypt("Ada"), ring.encrypt("Ada")
    assert one != two and ring.decrypt(one) == ring.decrypt(two) == "Ada"
    raw = bytearray(base64.b64decode(one.split(":", 1)[1]))
    raw[-1] ^= 1
    with pytest.raises(KeyRingError):
        ring.decrypt("dev:" + base64.b64encode(bytes(raw)).decode())
    with pytest.raises(KeyRingError):
        ring.decrypt("other:" + one.split(":", 1)[1])


@pytest.mark.parametrize("spec", ["", "nokey", "k1:not-base64!", "k1:" + base64.b64encode(b"short").decode()])
def test_bad_key_rings_are_refused(spec):
    with pytest.raises(KeyRingError):
        KeyRing.parse(spec)


def test_production_refuses_the_development_or_empty_key_ring(settings):
    import dataclasses

    assert "PII_KEYS has its development default" in dataclasses.replace(settings, APP_ENV="production").problems()
    assert "PII_KEYS is empty" in dataclasses.replace(settings, PII_KEYS="").problems()
    assert any("SECRET_KEY is shorter" in problem for problem in
               dataclasses.replace(settings, SECRET_KEY="short").problems())
    oidc = dataclasses.replace(settings, OIDC_ISSUER="http://idp.example")
    assert {"OIDC_ISSUER must be an https:// URL",
            "OIDC_ISSUER is set without OIDC_CLIENT_ID and OIDC_CLIENT_SECRET"} <= set(oidc.problems())
