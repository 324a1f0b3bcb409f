"""PII encryption at rest: AES-256-GCM under a key ring, as a SQLAlchemy column type.

A stored value is `<key id>:<base64(nonce | ciphertext | tag)>`, so every
value names the key that sealed it. Rotation: put a new key first in
`PII_KEYS` (it becomes the active key), keep the old ones for reading, run
`flask security reencrypt`, then drop the old keys.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator

NONCE_BYTES = 12


class KeyRingError(ValueError):
    """The key ring is malformed, or a value names a key it does not hold."""


@dataclass(frozen=True)
class KeyRing:
    """Named 32-byte keys; `active` seals new values, any of them opens old ones."""

    keys: dict[str, bytes]
    active: str

    @classmethod
    def parse(cls, spec: str, active: str = "") -> KeyRing:
        """Read `kid1:base64key,kid2:base64key` (newest first; the first is active unless `active` names one)."""
        keys: dict[str, bytes] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            kid, sep, encoded = item.partition(":")
            if not sep or not kid or ":" in kid:
                raise KeyRingError("PII_KEYS entries look like kid:base64key")
            try:
                key = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                raise KeyRingError(f"PII key {kid!r} is not base64") from None
            if len(key) != 32:
                raise KeyRingError(f"PII key {kid!r} must be 32 bytes (AES-256), not {len(key)}")
            keys[kid] = key
        if not keys:
            raise KeyRingError("PII_KEYS holds no key")
        active = active or next(iter(keys))
        if active not in keys:
            raise KeyRingError(f"PII_ACTIVE_KEY {active!r} is not in PII_KEYS")
        return cls(keys, active)

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.keys[self.active]).encrypt(nonce, plaintext.encode(), self.active.encode())
        return f"{self.active}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, stored: str) -> str:
        kid, _, payload = stored.partition(":")
        if kid not in self.keys:
            raise KeyRingError(f"no PII key {kid!r} in the key ring")
        raw = base64.b64decode(payload)
        try:
            return AESGCM(self.keys[kid]).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], kid.encode()).decode()
        except InvalidTag:
            raise KeyRingError(f"a value sealed with key {kid!r} failed its integrity check") from None


_ring: KeyRing | None = None


def configure(ring: KeyRing) -> None:
    """Use `ring` for every encrypted column of this process."""
    global _ring
    _ring = ring


def key_ring() -> KeyRing:
    """The process's key ring (the composition root configures it from settings)."""
    if _ring is None:
        raise KeyRingError("no PII key ring configured: build the process with bootstrap(settings)")
    return _ring


class EncryptedString(TypeDecorator):
    """A string stored AES-256-GCM encrypted; Python code sees plaintext."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else key_ring().encrypt(str(value))

    def process_result_value(self, value, dialect):
        return None if value is None else key_ring().decrypt(value)
