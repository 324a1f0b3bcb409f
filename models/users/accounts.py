"""Profiles, addresses and user administration, each checked against the permission table.

Another user's records are reported as missing (NotFound), never as
forbidden, so ids cannot be probed.
"""

from __future__ import annotations

import uuid

from redis import Redis
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from models.errors import Forbidden, InvalidRequest, NotFound
from models.security.events import record_event
from models.users.auth import AuthPolicy, alert_security, end_other_sessions
from models.users.passwords import hash_password, verify_password
from models.users.permissions import Actor, authorize
from models.users.tables import Address, Role, User

PROFILE_FIELDS = ("first_name", "last_name")
ADDRESS_FIELDS = ("first_name", "last_name", "line1", "line2", "city", "region", "postal_code", "country", "phone")


def get_me(session: Session, actor: Actor) -> User:
    """The caller's own account."""
    authorize(actor, "users:view_own")
    user = session.get(User, actor.user_id) if actor.user_id else None  # an API key has no account
    if user is None:
        raise NotFound("user not found")
    return user


def update_me(session: Session, redis: Redis, policy: AuthPolicy, actor: Actor, changes: dict,
              session_id: uuid.UUID | None) -> User:
    """Change the caller's names and/or password; a new password ends every other session."""
    authorize(actor, "users:update_own")
    user = session.get(User, actor.user_id, with_for_update=True) if actor.user_id else None
    if user is None:
        raise NotFound("user not found")
    _set_names(user, changes)
    if "password" in changes:
        if not verify_password(user.password_hash, changes.get("current_password") or ""):
            raise InvalidRequest("the current password is wrong", {"currentPassword": ["wrong password"]})
        user.password_hash = hash_password(changes["password"])
        ended = end_other_sessions(session, redis, policy, user.id, session_id, "password_change")
        record_event(session, "password_changed", actor, subject_user_id=user.id, sessions_ended=ended)
    return user


def _set_names(user: User, changes: dict) -> User:
    for name in PROFILE_FIELDS:
        if name in changes:
            setattr(user, name, changes[name])
    return user


def list_users(session: Session, actor: Actor, *, limit: int, after: tuple | None = None,
               role: str | None = None) -> list[User]:
    """Every account, oldest first; `after` is the (created_at, id) of the previous page's last one."""
    authorize(actor, "users:view_all")
    query = select(User).order_by(User.created_at, User.id).limit(limit)
    if after is not None:
        query = query.where(tuple_(User.created_at, User.id) > tuple_(*after))
    if role:
        query = query.where(User.role == role)
    return list(session.scalars(query))


def get_user(session: Session, actor: Actor, user_id: uuid.UUID) -> User:
    """Any account (view all), or the caller's own; someone else's is NotFound without view all."""
    if actor.user_id == user_id:
        return get_me(session, actor)
    if not actor.can("users:view_all"):
        raise NotFound("user not found")
    authorize(actor, "users:view_all")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    return user


def update_user(session: Session, redis: Redis, policy: AuthPolicy, actor: Actor, user_id: uuid.UUID,
                changes: dict) -> User:
    """Change any account (names, verification, role); a role change ends all its sessions.

    Without update all, only the caller's own names may change, and anyone else's account is NotFound.
    """
    if actor.user_id == user_id and not set(changes) - set(PROFILE_FIELDS):
        authorize(actor, "users:update_own")
        return _set_names(session.get(User, user_id, with_for_update=True), changes)
    if not actor.can("users:update_all"):
        if actor.user_id != user_id:
            raise NotFound("user not found")
        raise Forbidden("only an admin may change roles or verification")
    authorize(actor, "users:update_all")
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound("user not found")
    _check_role_change(actor, user, changes.get("role"))
    if user.id == actor.user_id and changes.get("is_verified") is False:
        raise Forbidden("you cannot clear your own verification: it would lock you out",
                        {"isVerified": ["would lock you out"]})
    for name in (*PROFILE_FIELDS, "is_verified"):
        if name in changes:
            setattr(user, name, changes[name])
    if "role" in changes and changes["role"] != user.role:
        before, user.role = user.role, changes["role"]
        ended = end_other_sessions(session, redis, policy, user.id, None, "role_change")
        record_event(session, "role_changed", actor, subject_user_id=user.id, before=before, after=user.role,
                     sessions_ended=ended)
        alert_security(session, policy, f"role changed from {before} to {user.role}", user.email, actor.ip)
    else:
        record_event(session, "user_updated", actor, subject_user_id=user.id, fields=sorted(changes))
    return user


def _check_role_change(actor: Actor, user: User, role: str | None) -> None:
    """Only a Super Admin may touch a Super Admin or make one; nobody changes their own role."""
    if actor.system:
        return
    if user.id == actor.user_id and role is not None and role != user.role:
        raise Forbidden("you cannot change your own role")
    touches_top = user.role == Role.SUPER_ADMIN or role == Role.SUPER_ADMIN
    if touches_top and actor.role != Role.SUPER_ADMIN:
        raise Forbidden("only a super admin may change a super admin or grant that role")


# --- addresses -------------------------------------------------------------

def list_addresses(session: Session, actor: Actor) -> list[Address]:
    authorize(actor, "users:view_own")
    return list(session.scalars(select(Address).where(Address.user_id == actor.user_id)
                                .order_by(Address.created_at, Address.id)))


def get_address(session: Session, actor: Actor, address_id: uuid.UUID, *, lock: bool = False) -> Address:
    """One of the caller's addresses; anyone else's is NotFound."""
    authorize(actor, "users:view_own")
    address = session.get(Address, address_id, with_for_update=lock)
    if address is None or address.user_id != actor.user_id:
        raise NotFound("address not found")
    return address


def add_address(session: Session, actor: Actor, fields: dict) -> Address:
    authorize(actor, "users:update_own")
    if actor.user_id is None:
        raise Forbidden("an API key has no addresses of its own")
    address = Address(user_id=actor.user_id, **{k: fields.get(k) for k in ADDRESS_FIELDS},
                      is_default=bool(fields.get("is_default")))
    if address.is_default:
        _clear_default(session, actor.user_id)
    session.add(address)
    session.flush()
    return address


def update_address(session: Session, actor: Actor, address_id: uuid.UUID, changes: dict) -> Address:
    authorize(actor, "users:update_own")
    address = get_address(session, actor, address_id, lock=True)
    if changes.get("is_default"):
        _clear_default(session, actor.user_id)
    for name in (*ADDRESS_FIELDS, "is_default"):
        if name in changes:
            setattr(address, name, changes[name])
    return address


def delete_address(session: Session, actor: Actor, address_id: uuid.UUID) -> None:
    authorize(actor, "users:update_own")
    session.delete(get_address(session, actor, address_id, lock=True))


def _clear_default(session: Session, user_id: uuid.UUID) -> None:
    for other in session.scalars(select(Address).where(Address.user_id == user_id, Address.is_default)):
        other.is_default = False
