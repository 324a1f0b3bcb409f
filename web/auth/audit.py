"""Every administrative action that changes something leaves a security event in the same transaction.

The guard marks the request (`g.admin_action`); when a session of that
request commits after writing, and the domain action recorded no event of
its own, a generic `admin_action` event is added to the same commit.
"""

from __future__ import annotations

from flask import g, has_request_context, request
from sqlalchemy import event
from sqlalchemy.orm import Session

from models.security.events import record_event


def register() -> None:
    """Listen on every Session (idempotent)."""
    if not event.contains(Session, "after_flush", _note_write):
        event.listen(Session, "after_flush", _note_write)
        event.listen(Session, "before_commit", _record_admin_action)
        event.listen(Session, "after_commit", _reset)
        event.listen(Session, "after_rollback", _reset)


def _note_write(session: Session, _context) -> None:
    session.info["wrote"] = True  # a flush with nothing to write fires no event


def _record_admin_action(session: Session) -> None:
    if not has_request_context() or not g.get("admin_action") or session.info.get("audited"):
        return
    session.flush()
    if not session.info.get("wrote"):
        return
    from web.auth.guard import current_actor

    record_event(session, "admin_action", current_actor(), permission=g.admin_action,
                 request=f"{request.method} {request.path}")
    session.flush()


def _reset(session: Session) -> None:
    session.info.pop("wrote", None)
    session.info.pop("audited", None)
