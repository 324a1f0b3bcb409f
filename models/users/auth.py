"""Signing in: passwords, lockout, TOTP second step, refresh-token families and revocation.

Failed attempts, lockouts and pending second steps live in Redis, keyed by a
hash of the email whether or not an account exists, so an unknown email gets
exactly the answers a real one does. Sessions and refresh tokens live in
PostgreSQL; revocations are mirrored into Redis for the access tokens still
in flight (see `token_revoked`).

Failures must be recorded although the request answers 401, so the
functions that refuse commit their session before raising.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
from redis import Redis
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models.emails.actions import queue_email
from models.errors import Conflict, Forbidden, InvalidRequest, Unauthorized
from models.security.events import mask_email, record_event
from models.retention.activity import touch
from models.users.actions import normalize_email
from models.users.passwords import DUMMY_HASH, hash_password, needs_rehash, verify_password
from models.users.permissions import ADMINS, Actor, authorize
from models.users.tables import AuthSession, OAuthIdentity, RecoveryCode, RefreshToken, Role, TotpCredential, User

BAD_CREDENTIALS = "invalid email or password"
LOCKED = "too many failed sign-ins: this account is locked for a while"
RECOVERY_CODES = 10
MFA_ATTEMPTS = 5


@dataclass(frozen=True)
class AuthPolicy:
    """The configurable numbers of signing in."""

    access_ttl: int = 3600
    refresh_ttl: int = 7 * 86400
    mfa_ttl: int = 300
    max_failures: int = 5
    lockout_seconds: int = 900
    alert_email: str = ""
    require_admin_mfa: bool = True
    issuer: str = "Shop"

    @classmethod
    def from_settings(cls, settings) -> AuthPolicy:
        return cls(settings.ACCESS_TOKEN_TTL, settings.REFRESH_TOKEN_TTL, settings.MFA_TOKEN_TTL,
                   settings.LOGIN_MAX_FAILURES, settings.LOCKOUT_SECONDS, settings.SECURITY_ALERT_EMAIL,
                   settings.REQUIRE_MFA_FOR_ADMINS, settings.TOTP_ISSUER)


@dataclass
class SignIn:
    """The outcome of a sign-in step: a session with a fresh refresh token, or a pending second step."""

    user: User
    session: AuthSession | None = None
    refresh_token: str | None = None
    mfa_token: str | None = None
    mfa_enrolment_required: bool = False


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _refuse(session: Session, error: Exception):
    """Keep what was recorded (events, revocations), then refuse."""
    session.commit()
    raise error


# --- passwords and lockout -------------------------------------------------

def login(session: Session, redis: Redis, policy: AuthPolicy, email: str, password: str, ip: str | None) -> SignIn:
    """Check a password; a locked account is refused even with the right one."""
    email = normalize_email(email)
    key = digest(email)
    user = session.scalar(select(User).where(User.email == email))
    # Hash every time, found or not, locked or not: equal work gives away nothing.
    good = verify_password(user.password_hash if user else DUMMY_HASH, password) and user is not None
    if redis.exists(f"auth:lock:{key}"):
        record_event(session, "login_locked", user_id=user.id if user else None, ip=ip, email=mask_email(email))
        _refuse(session, Unauthorized(LOCKED))
    if not good:
        _count_failure(session, redis, policy, email, user, ip)
        _refuse(session, Unauthorized(BAD_CREDENTIALS))
    redis.delete(f"auth:fail:{key}")
    if not user.is_verified:
        _refuse(session, Forbidden("verify your email address before signing in", {"email": ["not verified"]}))
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    if _totp_of(session, user.id, confirmed=True):
        return SignIn(user, mfa_token=_pending_second_step(redis, policy, user, ip))
    record_event(session, "login", user_id=user.id, ip=ip, mfa=False)
    signin = start_session(session, policy, user, mfa=False, ip=ip)
    signin.mfa_enrolment_required = policy.require_admin_mfa and Role(user.role) in ADMINS
    return signin


def _count_failure(session: Session, redis: Redis, policy: AuthPolicy, email: str, user: User | None,
                   ip: str | None) -> None:
    key = digest(email)
    failures = redis.incr(f"auth:fail:{key}")
    redis.expire(f"auth:fail:{key}", policy.lockout_seconds)
    record_event(session, "login_failed", user_id=user.id if user else None, ip=ip, email=mask_email(email),
                 failures=failures)
    if failures < policy.max_failures:
        return
    redis.set(f"auth:lock:{key}", 1, ex=policy.lockout_seconds)
    redis.delete(f"auth:fail:{key}")
    record_event(session, "lockout", user_id=user.id if user else None, ip=ip, email=mask_email(email),
                 seconds=policy.lockout_seconds)
    minutes = max(1, policy.lockout_seconds // 60)
    if user is not None:
        queue_email(session, user.email, "account_locked", minutes=minutes)
    alert_security(session, policy, "lockout", email, ip, minutes=minutes)


def alert_security(session: Session, policy: AuthPolicy, event: str, email: str, ip: str | None, **context) -> None:
    """Mail the security team (`SECURITY_ALERT_EMAIL`) about `event` concerning the account `email`."""
    if policy.alert_email:
        queue_email(session, policy.alert_email, "security_alert", event=event, account=mask_email(email),
                    ip=ip or "unknown", **context)


def lift_lockout(session: Session, redis: Redis, actor: Actor, email: str) -> bool:
    """Lift the sign-in lockout (and the failure count) of `email` (admins); whether one was in force."""
    authorize(actor, "users:update_all")
    key = digest(normalize_email(email))
    locked = bool(redis.delete(f"auth:lock:{key}", f"auth:fail:{key}"))
    user = session.scalar(select(User).where(User.email == normalize_email(email)))
    record_event(session, "lockout_lifted", actor, subject_user_id=user.id if user else None,
                 email=mask_email(email), was_locked=locked)
    return locked


# --- sessions and refresh tokens -------------------------------------------

def start_session(session: Session, policy: AuthPolicy, user: User, *, mfa: bool, ip: str | None) -> SignIn:
    """A new refresh-token family for `user`."""
    auth = AuthSession(id=uuid.uuid4(), user_id=user.id, mfa=mfa, ip=ip)
    session.add(auth)
    touch(session, user.id)
    token = _new_refresh_token(session, auth.id, _now() + timedelta(seconds=policy.refresh_ttl))
    return SignIn(user, session=auth, refresh_token=token)


def _new_refresh_token(session: Session, session_id: uuid.UUID, expires_at: datetime) -> str:
    token = secrets.token_urlsafe(32)
    session.add(RefreshToken(session_id=session_id, token_hash=digest(token), expires_at=expires_at))
    session.flush()
    return token


def refresh(session: Session, redis: Redis, policy: AuthPolicy, token: str, ip: str | None) -> SignIn:
    """Rotate: the presented token is spent and a new one issued; a spent one revokes its family."""
    row = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == digest(token)).with_for_update())
    if row is None:
        raise Unauthorized("invalid refresh token")
    auth = session.get(AuthSession, row.session_id, with_for_update=True)
    if auth.revoked_at is not None:
        raise Unauthorized("this session has ended")
    if row.used_at is not None:
        revoke_session(session, redis, policy, auth, "refresh_reuse")
        record_event(session, "refresh_token_reuse", user_id=auth.user_id, ip=ip, session_id=str(auth.id))
        alert_security(session, policy, "refresh token reuse", session.get(User, auth.user_id).email, ip)
        _refuse(session, Unauthorized("this refresh token was already used; the session has been ended"))
    if row.expires_at <= _now():
        raise Unauthorized("the refresh token has expired")
    row.used_at = _now()
    user = session.get(User, auth.user_id)
    touch(session, user.id)
    # The family keeps its first expiry: rotation does not extend a session past REFRESH_TOKEN_TTL.
    return SignIn(user, session=auth, refresh_token=_new_refresh_token(session, auth.id, row.expires_at))


def revoke_session(session: Session, redis: Redis, policy: AuthPolicy, auth: AuthSession, reason: str) -> None:
    """End a session: its refresh tokens stop working and so do its access tokens."""
    if auth.revoked_at is None:
        auth.revoked_at = _now()
        auth.revoked_reason = reason
    redis.set(f"auth:revoked-sid:{auth.id}", 1, ex=policy.access_ttl)


def logout(session: Session, redis: Redis, policy: AuthPolicy, actor: Actor, claims: dict | None) -> None:
    """Revoke this session's refresh family and deny the access token until it expires."""
    if not claims:
        raise Unauthorized("sign out needs the access token of the session")
    auth = session.get(AuthSession, uuid.UUID(claims["sid"]), with_for_update=True) if claims.get("sid") else None
    if auth is not None and auth.user_id == actor.user_id:
        revoke_session(session, redis, policy, auth, "logout")
    redis.set(f"auth:denied-jti:{claims['jti']}", 1, ex=max(1, int(claims["exp"] - time.time())))
    record_event(session, "logout", actor)


def end_other_sessions(session: Session, redis: Redis, policy: AuthPolicy, user_id: uuid.UUID,
                       keep: uuid.UUID | None, reason: str) -> int:
    """After a password or role change: every session but `keep` ends, access tokens included."""
    ended = session.scalars(
        update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None),
                                  AuthSession.id != keep if keep else True)
        .values(revoked_at=func.now(), revoked_reason=reason).returning(AuthSession.id)).all()
    for session_id in ended:
        redis.set(f"auth:revoked-sid:{session_id}", 1, ex=policy.access_ttl)
    # And any token minted before now for this user, unless it belongs to `keep`.
    redis.set(f"auth:cutoff:{user_id}", json.dumps([int(time.time()), str(keep) if keep else None]),
              ex=policy.access_ttl)
    return len(ended)


def token_revoked(redis: Redis, claims: dict) -> bool:
    """Whether an access token was logged out, its session ended, or its user's sessions cut off."""
    return revoked_by(redis.mget(*revocation_keys(claims)), claims)


def revocation_keys(claims: dict) -> tuple[str, str, str]:
    """The Redis keys that can revoke this token (read them with one MGET)."""
    return (f"auth:denied-jti:{claims.get('jti')}", f"auth:revoked-sid:{claims.get('sid')}",
            f"auth:cutoff:{claims.get('sub')}")


def revoked_by(values: list, claims: dict) -> bool:
    """Whether the values of `revocation_keys(claims)` revoke the token."""
    denied, sid_revoked, cutoff = values
    if denied or sid_revoked:
        return True
    if cutoff:
        at, keep = json.loads(cutoff)
        return claims.get("iat", 0) < at and claims.get("sid") != keep
    return False


# --- TOTP ------------------------------------------------------------------

def _totp_of(session: Session, user_id: uuid.UUID, *, confirmed: bool, lock: bool = False) -> TotpCredential | None:
    query = select(TotpCredential).where(TotpCredential.user_id == user_id)
    if confirmed:
        query = query.where(TotpCredential.confirmed_at.is_not(None))
    return session.scalar(query.with_for_update() if lock else query)


def _pending_second_step(redis: Redis, policy: AuthPolicy, user: User, ip: str | None) -> str:
    token = secrets.token_urlsafe(32)
    redis.hset(f"auth:mfa:{digest(token)}", mapping={"user_id": str(user.id), "attempts": 0})
    redis.expire(f"auth:mfa:{digest(token)}", policy.mfa_ttl)
    return token


def begin_totp(session: Session, policy: AuthPolicy, actor: Actor) -> tuple[str, str]:
    """A new (unconfirmed) TOTP secret for the caller: `(secret, otpauth URI)`."""
    user = _person(session, actor)
    existing = _totp_of(session, user.id, confirmed=False, lock=True)
    if existing is not None and existing.confirmed_at is not None:
        raise Conflict("TOTP is already enrolled", {"mfa": ["already enrolled"]})
    secret = pyotp.random_base32()
    if existing is None:
        session.add(TotpCredential(user_id=user.id, secret=secret))
    else:
        existing.secret = secret
    return secret, pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=policy.issuer)


def _person(session: Session, actor: Actor) -> User:
    """The caller's account; API keys have none, so MFA is not theirs to set up."""
    user = session.get(User, actor.user_id) if actor.user_id else None
    if user is None:
        raise Forbidden("only a signed-in user can set up MFA")
    return user


def _accept_totp(credential: TotpCredential, code: str) -> bool:
    """A code of this or a neighbouring 30 s step, newer than the last one accepted (no replay)."""
    totp = pyotp.TOTP(credential.secret)
    step = int(time.time()) // totp.interval
    for candidate in (step - 1, step, step + 1):
        # Bytes: a code in other scripts' digits (fullwidth, Arabic-Indic) is simply a wrong code.
        if candidate > credential.last_step and hmac.compare_digest(totp.at(candidate * totp.interval).encode(),
                                                                    code.encode()):
            credential.last_step = candidate
            return True
    return False


def confirm_totp(session: Session, actor: Actor, code: str) -> list[str]:
    """Confirm enrolment with a first code; returns the recovery codes (shown once, kept hashed)."""
    _person(session, actor)
    credential = _totp_of(session, actor.user_id, confirmed=False, lock=True)
    if credential is None or credential.confirmed_at is not None:
        raise Conflict("start TOTP enrolment first", {"mfa": ["no enrolment in progress"]})
    if not _accept_totp(credential, code):
        _refuse(session, InvalidRequest("the code is wrong or was already used", {"code": ["invalid"]}))
    credential.confirmed_at = _now()
    codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODES)]
    session.add_all(RecoveryCode(user_id=actor.user_id, code_hash=digest(code)) for code in codes)
    record_event(session, "mfa_enabled", actor)
    return codes


def complete_mfa(session: Session, redis: Redis, policy: AuthPolicy, mfa_token: str, code: str,
                 ip: str | None) -> SignIn:
    """The second step: a TOTP or recovery code turns a pending sign-in into a session that records MFA."""
    key = f"auth:mfa:{digest(mfa_token)}"
    user_id = redis.hget(key, "user_id")
    if user_id is None:
        raise Unauthorized("the sign-in has expired; start again")
    user = session.get(User, uuid.UUID(user_id.decode()))
    if user is None:
        raise Unauthorized("the sign-in has expired; start again")
    credential = _totp_of(session, user.id, confirmed=True, lock=True)
    method = "totp" if credential and _accept_totp(credential, code) else _use_recovery_code(session, user, code)
    if method is None:
        if redis.hincrby(key, "attempts", 1) >= MFA_ATTEMPTS:
            redis.delete(key)
        record_event(session, "mfa_failed", user_id=user.id, ip=ip)
        _refuse(session, Unauthorized("the code is wrong or was already used"))
    redis.delete(key)
    record_event(session, "login", user_id=user.id, ip=ip, mfa=True, method=method)
    return start_session(session, policy, user, mfa=True, ip=ip)


def _use_recovery_code(session: Session, user: User, code: str) -> str | None:
    row = session.scalar(select(RecoveryCode).where(RecoveryCode.user_id == user.id,
                                                    RecoveryCode.code_hash == digest(code.strip().lower()),
                                                    RecoveryCode.used_at.is_(None)).with_for_update())
    if row is None:
        return None
    row.used_at = _now()
    return "recovery_code"


# --- OpenID Connect ---------------------------------------------------------

def oidc_sign_in(session: Session, redis: Redis, policy: AuthPolicy, issuer: str, claims: dict,
                 ip: str | None) -> SignIn:
    """Sign in the user linked to (issuer, sub); link by verified email, or create a verified customer."""
    identity = session.scalar(select(OAuthIdentity).where(OAuthIdentity.issuer == issuer,
                                                          OAuthIdentity.subject == claims["sub"]))
    user = session.get(User, identity.user_id) if identity else _link_or_create(session, issuer, claims, ip)
    if redis.exists(f"auth:lock:{digest(user.email)}"):
        _refuse(session, Unauthorized(LOCKED))
    if _totp_of(session, user.id, confirmed=True):
        return SignIn(user, mfa_token=_pending_second_step(redis, policy, user, ip))
    record_event(session, "login", user_id=user.id, ip=ip, mfa=False, method="oidc", issuer=issuer)
    signin = start_session(session, policy, user, mfa=False, ip=ip)
    signin.mfa_enrolment_required = policy.require_admin_mfa and Role(user.role) in ADMINS
    return signin


def _link_or_create(session: Session, issuer: str, claims: dict, ip: str | None) -> User:
    # Only an address the provider has verified may claim an existing account.
    if not claims.get("email") or claims.get("email_verified") is not True:
        raise Unauthorized("the provider did not confirm an email address")
    email = normalize_email(claims["email"])
    user = session.scalar(select(User).where(User.email == email).with_for_update())
    if user is None:
        user = User(email=email, password_hash=hash_password(secrets.token_urlsafe(32)),
                    first_name=(claims.get("given_name") or email.split("@")[0])[:100],
                    last_name=(claims.get("family_name") or "-")[:100], role=Role.CUSTOMER.value, is_verified=True)
        session.add(user)
        session.flush()
        record_event(session, "user_created", user_id=user.id, ip=ip, method="oidc", issuer=issuer)
    session.add(OAuthIdentity(user_id=user.id, issuer=issuer, subject=claims["sub"]))
    record_event(session, "oidc_linked", user_id=user.id, ip=ip, issuer=issuer)
    return user
