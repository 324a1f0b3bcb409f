"""Keeping identity data no longer than needed: the security log for a year, dead sessions not at all."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func

from models.db import Database
from models.security.tables import SecurityEvent
from models.users.tables import AuthSession


def purge_identity_data(db: Database, event_retention_days: int, refresh_ttl_seconds: int) -> dict[str, int]:
    """Delete security events past retention and sessions whose refresh tokens have all expired."""
    with db.session() as session:
        events = session.execute(delete(SecurityEvent).where(
            SecurityEvent.created_at < func.now() - timedelta(days=event_retention_days))).rowcount
        # A family never outlives its first token's expiry, so older sessions are dead (tokens cascade).
        sessions = session.execute(delete(AuthSession).where(
            AuthSession.created_at < func.now() - timedelta(seconds=refresh_ttl_seconds))).rowcount
    return {"security_events": events, "auth_sessions": sessions}
