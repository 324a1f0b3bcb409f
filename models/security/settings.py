"""The shop's runtime settings (the `settings` table): view is admin, update is super admin."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.emails.actions import queue_email
from models.security.events import record_event
from models.security.tables import ShopSetting
from models.users.permissions import Actor, authorize


def view_settings(session: Session, actor: Actor) -> dict:
    """Every stored setting, by key."""
    authorize(actor, "settings:view")
    return {row.key: row.value for row in session.scalars(select(ShopSetting).order_by(ShopSetting.key))}


def update_settings(session: Session, actor: Actor, changes: dict, alert_email: str = "") -> dict:
    """Set each key to its value (null deletes it); the change is logged, and `alert_email` told, with the keys."""
    authorize(actor, "settings:update")
    for key, value in changes.items():
        row = session.get(ShopSetting, key, with_for_update=True)
        if value is None:
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(ShopSetting(key=key, value=value, updated_by=actor.user_id))
        else:
            row.value, row.updated_by = value, actor.user_id
    record_event(session, "settings_changed", actor, keys=sorted(changes))
    if alert_email:
        queue_email(session, alert_email, "security_alert", event=f"settings changed: {', '.join(sorted(changes))}",
                    account=str(actor.user_id or actor.api_key_id), ip=actor.ip or "unknown")
    session.flush()
    return view_settings(session, actor)
