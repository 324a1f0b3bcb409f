"""Erasure: a user's personal data replaced or deleted at once, their orders kept for their legal period.

The inactivity purge and `DELETE /users/me` / `DELETE /users/{id}` share
`anonymise`, so both remove exactly the same things.
"""

from __future__ import annotations

import logging
import uuid

from redis import Redis
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from models.emails.tables import EmailMessage
from models.errors import Conflict, Forbidden, NotFound
from models.imports.tables import ImportJob
from models.orders.tables import IdempotencyKey
from models.retention.tables import UserLifecycle
from models.security.events import record_event
from models.users.auth import AuthPolicy, end_other_sessions
from models.users.permissions import Actor, authorize
from models.users.key_access import KeyAccess
from models.users.tables import (Address, ApiKey, AuthSession, OAuthIdentity, RecoveryCode, Role, TotpCredential,
                                 User, UserToken)

log = logging.getLogger(__name__)

UNUSABLE_PASSWORD = "!erased"  # not an argon2 hash: no password ever verifies against it  # noqa: S105

# Rows that exist only for the user: deleted outright (refresh tokens go with their sessions).
OWNED = (Address, UserToken, AuthSession, TotpCredential, RecoveryCode, OAuthIdentity, IdempotencyKey)


def erased_email(user_id: uuid.UUID) -> str:
    """A unique placeholder in the reserved `.invalid` domain: nobody can receive mail there."""
    return f"erased-{user_id.hex}@erased.invalid"


def anonymise(session: Session, user_id: uuid.UUID, *, reason: str, actor: Actor | None = None,
              redis: Redis | None = None, policy: AuthPolicy | None = None) -> bool:
    """Replace the user's names, email and password and delete what only identifies them; False if done before."""
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        return False
    if user.email == erased_email(user.id):
        _mark_erased(session, user.id)  # so the inactivity purge never selects it again
        return False
    email = user.email
    if redis is not None and policy is not None:  # access tokens still in flight stop working now
        end_other_sessions(session, redis, policy, user.id, None, "erased")
    for table in OWNED:
        session.execute(delete(table).where(table.user_id == user.id))
    gone = session.execute(delete(ApiKey).where(ApiKey.created_by == user.id)
                           .returning(ApiKey.id, ApiKey.key_hash)).all()
    if redis is not None:  # their cached entries stop working now too (else within API_KEY_CACHE_TTL)
        KeyAccess(redis).forget([(key_id, key_hash) for key_id, key_hash in gone])
    keys = len(gone)
    mails = session.execute(delete(EmailMessage).where(EmailMessage.to_address == email)).rowcount
    session.execute(update(ImportJob).where(ImportJob.report_to == email).values(report_to=None))
    user.email, user.password_hash = erased_email(user.id), UNUSABLE_PASSWORD
    user.first_name = user.last_name = ""
    user.is_verified, user.role = False, Role.CUSTOMER.value
    _mark_erased(session, user.id)
    record_event(session, "user_erased", actor, subject_user_id=user.id, reason=reason, api_keys=keys,
                 emails=mails)
    # The id alone (no personal data) also goes to the logs, which outlive a restore of the database:
    # after restoring to an earlier point, these lines list the erasures to replay.
    log.info("user erased", extra={"user_id": str(user.id), "reason": reason})
    return True


def _mark_erased(session: Session, user_id: uuid.UUID) -> None:
    session.execute(insert(UserLifecycle).values(user_id=user_id, erased_at=func.now()).on_conflict_do_update(
        index_elements=[UserLifecycle.user_id],
        set_={"erased_at": func.coalesce(UserLifecycle.erased_at, func.now())}))


def erase_on_request(session: Session, actor: Actor, user_id: uuid.UUID, redis: Redis, policy: AuthPolicy) -> None:
    """`DELETE /users/me` (own) or `DELETE /users/{id}` (admin with MFA): anonymise now, keep the orders."""
    if actor.user_id == user_id:
        authorize(actor, "users:erase_own")
    elif not actor.can("users:erase_all"):
        raise NotFound("user not found")
    else:
        authorize(actor, "users:erase_all")
    user = session.get(User, user_id, with_for_update=True)
    if user is None or user.email == erased_email(user_id):
        raise NotFound("user not found")
    if user.role == Role.SUPER_ADMIN:
        if actor.user_id != user_id and actor.role != Role.SUPER_ADMIN and not actor.system:
            raise Forbidden("only a super admin may erase a super admin")
        others = session.scalar(select(func.count()).select_from(User).where(
            User.role == Role.SUPER_ADMIN.value, User.id != user_id))
        if not others:
            raise Conflict("the last super admin cannot be erased", {"userId": ["last super admin"]})
    anonymise(session, user_id, reason="request", actor=actor, redis=redis, policy=policy)
