"""What can happen to a user: registration and email verification."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.emails.actions import prepares, queue_email
from models.emails.tables import EmailMessage
from models.errors import Conflict, InvalidRequest
from models.users.passwords import hash_password
from models.users.tables import Role, User, UserToken

VERIFY_EMAIL = "verify_email"


def normalize_email(email: str) -> str:
    """Emails are unique regardless of case and surrounding spaces."""
    return email.strip().lower()


def register_user(session: Session, *, email: str, password: str, first_name: str, last_name: str) -> User:
    """Create a customer account and queue its verification email."""
    email = normalize_email(email)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict("an account with this email already exists", {"email": ["already registered"]})
    user = User(email=email, password_hash=hash_password(password), first_name=first_name.strip(),
                last_name=last_name.strip(), role=Role.CUSTOMER.value, is_verified=False)
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:  # a concurrent registration won the race
        raise Conflict("an account with this email already exists", {"email": ["already registered"]}) from None
    queue_email(session, user.email, VERIFY_EMAIL, user_id=str(user.id))
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User, purpose: str, ttl: timedelta) -> str:
    """A fresh single-use token for `user`; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    session.add(UserToken(user_id=user.id, purpose=purpose, token_hash=_digest(token),
                          expires_at=datetime.now(UTC).replace(tzinfo=None) + ttl))
    return token


def consume_token(session: Session, token: str, purpose: str) -> UserToken:
    """Mark a token used; forged, reused and expired tokens raise InvalidRequest."""
    row = session.scalar(select(UserToken).where(UserToken.token_hash == _digest(token),
                                                  UserToken.purpose == purpose).with_for_update())
    now = session.scalar(select(func.now()))
    if row is None or row.used_at is not None or row.expires_at <= now.replace(tzinfo=None):
        raise InvalidRequest("the token is invalid, expired or already used", {"token": ["invalid or expired"]})
    row.used_at = now
    return row


def verify_email(session: Session, token: str) -> User:
    """Mark the token's user verified."""
    row = consume_token(session, token, VERIFY_EMAIL)
    user = session.get(User, row.user_id, with_for_update=True)
    user.is_verified = True
    return user


def verification_prepare(ttl: timedelta, link: str):
    """Register the verify_email hook: issue the token as the email is sent."""
    @prepares(VERIFY_EMAIL)
    def prepare(session: Session, message: EmailMessage) -> dict | None:
        user = session.get(User, message.context["user_id"])
        if user is None or user.is_verified:
            return None
        token = issue_token(session, user, VERIFY_EMAIL, ttl)
        return {"first_name": user.first_name, "verify_url": link.format(token=token),
                "expires_hours": int(ttl.total_seconds() // 3600)}
    return prepare
