"""Stripe's webhook signature scheme, shared by the Stripe adapter and the sandbox."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import stripe

from integrations.payments.base import Event, InvalidSignature


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
    obj = data.get("data", {}).get("object", {})
    return Event(id=data["id"], type=data["type"], object_id=obj.get("id", ""), payload=data)
