"""When a user was last active: bumped at every sign-in and token refresh, read by the inactivity purge."""

from __future__ import annotations

import uuid

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from models.retention.tables import UserLifecycle


def touch(session: Session, user_id: uuid.UUID) -> None:
    """Record activity of `user_id` now (in the caller's transaction)."""
    session.execute(insert(UserLifecycle).values(user_id=user_id).on_conflict_do_update(
        index_elements=[UserLifecycle.user_id], set_={"last_active_at": func.now()}))
