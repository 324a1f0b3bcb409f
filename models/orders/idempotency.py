"""Idempotency keys: a retried request gets the first answer back.

The key row is claimed with INSERT … ON CONFLICT in the same transaction as
the order. A second request with the same key waits on the unique index
until the first commits, then finds the stored answer; if the first rolled
back (409, say), the key is free again and the retry runs. A key older than
its TTL is claimed afresh by the same statement (its row overwritten), so a
claim is one round trip and remembering the answer one more.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from models.errors import DomainError
from models.orders.tables import IdempotencyKey


class KeyReused(DomainError):
    """The key was used before with a different request body."""


def request_hash(body: object) -> str:
    """A stable digest of the request body."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def claim(session: Session, user_id: uuid.UUID, key: str, digest: str, ttl: timedelta) -> IdempotencyKey | None:
    """None when this request should run; the stored answer when it ran before; KeyReused on a new body."""
    claimed = insert(IdempotencyKey).values(user_id=user_id, key=key, request_hash=digest, response_code=0,
                                            response_body={})
    inserted = session.execute(claimed.on_conflict_do_update(
        index_elements=[IdempotencyKey.user_id, IdempotencyKey.key],
        set_={"request_hash": claimed.excluded.request_hash, "response_code": 0, "response_body": {},
              "created_at": func.now()},
        where=IdempotencyKey.created_at < func.now() - ttl).returning(IdempotencyKey.key)).scalar()
    if inserted is not None:
        return None
    prior = session.scalar(select(IdempotencyKey).where(IdempotencyKey.user_id == user_id,
                                                        IdempotencyKey.key == key))
    if prior.request_hash != digest:
        raise KeyReused("this Idempotency-Key was used with a different request",
                        {"Idempotency-Key": ["already used with a different body"]})
    return prior


def remember(session: Session, user_id: uuid.UUID, key: str, code: int, body: dict) -> None:
    """Store the answer under the claimed key."""
    session.execute(update(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
                    .values(response_code=code, response_body=body))
