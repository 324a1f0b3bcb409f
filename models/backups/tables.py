"""One row per backup job run: what the metrics and the drill history are read from."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base

JOBS = ("full", "diff", "check", "drill")
OK, FAILED = "ok", "failed"


class BackupRun(Base):
    __tablename__ = "backup_runs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime] = mapped_column(server_default=func.now())
    backup_label: Mapped[str | None] = mapped_column(String(64))
    # Stop time of the newest verified backup (full/diff runs), last archived WAL (check runs).
    backup_stopped_at: Mapped[datetime | None]
    archived_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))

    __table_args__ = (Index("ix_backup_runs_job_id", "job", "id"),)
