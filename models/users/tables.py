"""User accounts (exactly the spec's `users` table), addresses and tokens."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CHAR, BigInteger, ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.crypto import EncryptedString
from models.db import Base, Timestamps


class Role(enum.StrEnum):
    GUEST = "guest"
    CUSTOMER = "customer"
    STAFF = "staff"
    ADMIN = "admin"
    SUPER_ADMIN = "super_admin"


class User(Timestamps, Base):
    __tablename__ = "users"
    __table_args__ = (
        Index("idx_users_email", "email"),
        Index("idx_users_role", "role"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    first_name: Mapped[str] = mapped_column(EncryptedString())
    last_name: Mapped[str] = mapped_column(EncryptedString())
    role: Mapped[str] = mapped_column(String(20), server_default=Role.CUSTOMER.value)
    is_verified: Mapped[bool] = mapped_column(server_default=text("false"))

    addresses: Mapped[list[Address]] = relationship(back_populates="user", passive_deletes=True)


class AddressFields:
    """The columns every postal address has (API.md's Address), each encrypted at rest."""

    first_name: Mapped[str] = mapped_column(EncryptedString())
    last_name: Mapped[str] = mapped_column(EncryptedString())
    line1: Mapped[str] = mapped_column(EncryptedString())
    line2: Mapped[str | None] = mapped_column(EncryptedString())
    city: Mapped[str] = mapped_column(EncryptedString())
    region: Mapped[str | None] = mapped_column(EncryptedString())
    postal_code: Mapped[str] = mapped_column(EncryptedString())
    country: Mapped[str] = mapped_column(EncryptedString())
    phone: Mapped[str | None] = mapped_column(EncryptedString())


class Address(AddressFields, Timestamps, Base):
    __tablename__ = "addresses"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    is_default: Mapped[bool] = mapped_column(server_default=text("false"))

    user: Mapped[User] = relationship(back_populates="addresses")


class UserToken(Base):
    """A single-use token sent to a user (email verification, and later more).

    Only the SHA-256 of the token is kept; the token itself exists in the
    email alone.
    """

    __tablename__ = "user_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(CHAR(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


class AuthSession(Base):
    """One sign-in: its refresh tokens form a family that is revoked together."""

    __tablename__ = "auth_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    mfa: Mapped[bool] = mapped_column(server_default=text("false"))
    ip: Mapped[str | None] = mapped_column(String(45))
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(32))


class RefreshToken(Base):
    """A refresh token of a session; only its SHA-256 is kept, and it is used at most once."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(CHAR(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


class TotpCredential(Base):
    """A user's TOTP secret (encrypted), confirmed once a first code matched."""

    __tablename__ = "totp_credentials"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    secret: Mapped[str] = mapped_column(EncryptedString())
    confirmed_at: Mapped[datetime | None]
    last_step: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


class RecoveryCode(Base):
    """A single-use MFA recovery code; only its SHA-256 is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(CHAR(64), unique=True)
    used_at: Mapped[datetime | None]


class ApiKey(Base):
    """A server-to-server key: shown once, kept as SHA-256 beside a visible prefix."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(CHAR(64))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # Counted in Redis per request and added here by the usage flush (models.users.key_access).
    use_count: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    usage_batch: Mapped[int | None] = mapped_column(BigInteger)  # the highest flushed batch: none counts twice


class OAuthIdentity(Base):
    """A user's account at an OIDC provider (issuer and subject)."""

    __tablename__ = "oauth_identities"
    __table_args__ = (Index("oauth_identities_issuer_subject_key", "issuer", "subject", unique=True),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
