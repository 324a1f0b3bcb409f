"""Each user's last activity and erasure, and what every purge has removed so far."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, text
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base


class UserLifecycle(Base):
    """Beside the spec's users table: when the user was last active, and when the account was erased."""

    __tablename__ = "user_lifecycle"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    last_active_at: Mapped[datetime] = mapped_column(server_default=text("now()"), index=True)
    erased_at: Mapped[datetime | None]


class RetentionCounter(Base):
    """Rows removed per kind, bumped in the transaction that removes them (so a killed run never counts twice)."""

    __tablename__ = "retention_counters"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    purged_total: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    last_purged: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    last_run_at: Mapped[datetime | None]
