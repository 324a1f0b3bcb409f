"""Stripe's webhook signature scheme, shared by the Stripe adapter and the sandbox."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import stripe

from integrations.payments.base import Event, InvalidSignature, MalformedEvent


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header value: `t=...,v1=HMAC-SHA256(secret, "t.payload")`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(payload: bytes, signature: str, secret: str, tolerance: int = 300) -> Event:
    """Check the signature with the stripe library's own verifier, then parse the event."""
    try:
        stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature or "", secret, tolerance)
        data = json.loads(payload)
    except (stripe.SignatureVerificationError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidSignature(str(exc)) from None
    if not isinstance(data, dict) or not all(_text(data.get(name)) for name in ("id", "type")):
        raise MalformedEvent("a signed body that is not an event: needs text `id` and `type`")
    inner = data.get("data", {})
    obj = inner.get("object", {}) if isinstance(inner, dict) else None
    if not isinstance(obj, dict) or not isinstance(obj.get("id", ""), str):
        raise MalformedEvent("a signed event whose `data.object` is not an object with a text `id`")
    return Event(id=data["id"], type=data["type"], object_id=obj.get("id", ""), payload=data)


def _text(value) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 255
