"""Server-to-server API keys: shown once, kept as SHA-256 beside a visible prefix, scoped, revocable.

Checking a key on a request and counting its use is `models.users.key_access`.
"""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.errors import Forbidden, InvalidRequest, NotFound
from models.security.events import record_event
from models.users.auth import digest
from models.users.key_access import KEY_PREFIX, KeyAccess
from models.users.permissions import NEEDS_PERSON, PERMISSIONS, Actor, authorize
from models.users.tables import ApiKey



def create_api_key(session: Session, actor: Actor, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """A new key holding `scopes` (each one the creator holds); returns the row and the key, shown once."""
    authorize(actor, "api_keys:manage")
    unknown = sorted(set(scopes) - PERMISSIONS.keys())
    if unknown:
        raise InvalidRequest("unknown permissions", {"scopes": [f"unknown: {', '.join(unknown)}"]})
    personal = sorted(set(scopes) & NEEDS_PERSON)
    if personal:
        raise InvalidRequest("an API key acts for no person",
                             {"scopes": [f"needs a signed-in user: {', '.join(personal)}"]})
    beyond = sorted(scope for scope in scopes if not actor.can(scope))
    if beyond:
        raise Forbidden("a key cannot hold permissions its creator lacks", {"scopes": beyond})
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(id=uuid.uuid4(), name=name, prefix=prefix, key_hash=digest(key), scopes=sorted(set(scopes)),
                 created_by=actor.user_id)
    session.add(row)
    session.flush()
    record_event(session, "api_key_created", actor, api_key=str(row.id), scopes=row.scopes)
    return row, key


def list_api_keys(session: Session, actor: Actor) -> list[ApiKey]:
    authorize(actor, "api_keys:manage")
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id)))


def get_api_key(session: Session, actor: Actor, key_id: uuid.UUID) -> ApiKey:
    authorize(actor, "api_keys:manage")
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound("API key not found")
    return row


def revoke_api_key(session: Session, actor: Actor, key_id: uuid.UUID, access: KeyAccess) -> ApiKey:
    """Stop a key working, at once (its cached entry too, before the commit); revoking twice is harmless."""
    row = get_api_key(session, actor, key_id)
    access.forget([(row.id, row.key_hash)])
    if row.revoked_at is None:
        row.revoked_at = func.now()
        record_event(session, "api_key_revoked", actor, api_key=str(row.id))
    return row
