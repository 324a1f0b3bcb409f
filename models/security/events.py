"""Writing and reading the security log."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.security.tables import SecurityEvent
from models.users.permissions import Actor, authorize


def mask_email(email: str) -> str:
    """`jane@example.com` -> `j***@example.com`, the only form an email takes in logs and events."""
    local, at, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if at else "***"


def record_event(session: Session, kind: str, actor: Actor | None = None, *, subject_user_id=None,
                 user_id=None, ip: str | None = None, **details) -> SecurityEvent:
    """Add a security event to `session`'s transaction (so it exists only if the change does)."""
    event = SecurityEvent(kind=kind, actor_user_id=user_id or (actor.user_id if actor else None),
                          actor_api_key_id=actor.api_key_id if actor else None, subject_user_id=subject_user_id,
                          ip=ip or (actor.ip if actor else None), details=details)
    session.add(event)
    session.info["audited"] = True
    session.info.setdefault("security_kinds", []).append(kind)  # counted once committed (web.collectors)
    return event


def list_events(session: Session, actor: Actor, *, limit: int, before: int | None = None,
                kind: str | None = None, user_id: uuid.UUID | None = None) -> list[SecurityEvent]:
    """Newest first; `before` is the id of the last event of the previous page."""
    authorize(actor, "security_events:view")
    query = select(SecurityEvent).order_by(SecurityEvent.id.desc()).limit(limit)
    if before is not None:
        query = query.where(SecurityEvent.id < before)
    if kind:
        query = query.where(SecurityEvent.kind == kind)
    if user_id:
        query = query.where((SecurityEvent.actor_user_id == user_id) | (SecurityEvent.subject_user_id == user_id))
    return list(session.scalars(query))
