"""Import and export jobs, row-level errors, scanned and done chunks, file checksums and the COPY staging table."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, Numeric, String, Table, Text, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base, Timestamps

QUEUED, RUNNING, SUCCEEDED, PARTIALLY_FAILED, FAILED, DUPLICATE = (
    "queued", "running", "succeeded", "partially_failed", "failed", "duplicate")
FINISHED = (SUCCEEDED, PARTIALLY_FAILED, FAILED, DUPLICATE)
PARTIAL, ALL_OR_NOTHING = "partial", "all_or_nothing"


class ImportJob(Timestamps, Base):
    """One catalog file on its way from an inbox (or an upload) into the catalog."""

    __tablename__ = "import_jobs"
    __table_args__ = (
        # One job per file version found in an inbox, however many polls see it.
        Index("ix_import_jobs_inbox_file", "inbox", "source_key", "source_stamp", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    inbox: Mapped[str] = mapped_column(String(500))
    source_key: Mapped[str] = mapped_column(String(1000))
    source_stamp: Mapped[str] = mapped_column(String(100), server_default="")
    filename: Mapped[str] = mapped_column(String(255))
    format: Mapped[str | None] = mapped_column(String(8))
    policy: Mapped[str] = mapped_column(String(16), server_default=PARTIAL)
    status: Mapped[str] = mapped_column(String(20), server_default=QUEUED, index=True)
    message: Mapped[str] = mapped_column(Text, server_default="")
    checksum: Mapped[str | None] = mapped_column(String(64), index=True)
    size: Mapped[int | None] = mapped_column(BigInteger)
    report_to: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    rows_total: Mapped[int | None] = mapped_column(Integer)
    rows_imported: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    rows_failed: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    chunks_total: Mapped[int | None] = mapped_column(Integer)
    error_report_key: Mapped[str | None] = mapped_column(String(1000))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class ImportError_(Base):
    """One rejected cell (or row): row number as API.md counts it, column, value and why."""

    __tablename__ = "import_errors"
    __table_args__ = (Index("ix_import_errors_job_id_row_no", "job_id", "row_no"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"))
    row_no: Mapped[int] = mapped_column(BigInteger)
    column: Mapped[str] = mapped_column(String(64), server_default="")
    value: Mapped[str] = mapped_column(Text, server_default="")
    message: Mapped[str] = mapped_column(Text)


class ImportChunk(Base):
    """A chunk merged for good: its row counts are added to the job exactly once."""

    __tablename__ = "import_chunks"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"), primary_key=True)
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True)
    rows_imported: Mapped[int] = mapped_column(Integer)
    rows_failed: Mapped[int] = mapped_column(Integer)


class ImportScanChunk(Base):
    """A chunk scanned for good: its rows counted and its row errors recorded exactly once.

    The scan resumes after the last chunk recorded here, so a worker killed
    mid-scan loses at most the chunk it was checking.
    """

    __tablename__ = "import_scan_chunks"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"), primary_key=True)
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True)
    rows: Mapped[int] = mapped_column(Integer)
    rows_failed: Mapped[int] = mapped_column(Integer)


class ImportedFile(Base):
    """The checksum of every file imported, so the same file dropped again is skipped."""

    __tablename__ = "imported_files"

    checksum: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


# The scan COPYs each chunk's checked, normalised rows here (keyed by job and chunk) in the transaction that
# records the chunk; the load moves them out and merges them in SQL. UNLOGGED: nothing here is the only copy
# (a PostgreSQL crash empties the table, and the load then reads the file for the chunks it finds missing).
# No foreign key to the job: it cost a lookup per row staged; a job's last step deletes what is left.
import_staging = Table(
    "import_staging", Base.metadata,
    Column("job_id", Uuid, nullable=False),
    Column("row_no", BigInteger, nullable=False),
    Column("sku", Text, nullable=False),
    Column("product_handle", Text, nullable=False),
    Column("product_name", Text, nullable=False),
    Column("description", Text),
    Column("category_path", Text),
    Column("price", Numeric(20, 4), nullable=False),
    Column("currency", Text, nullable=False),
    Column("stock", BigInteger, nullable=False),
    Column("image_urls", Text),
    Column("attributes", JSONB),
    Column("chunk", Integer, nullable=False),
    Index("ix_import_staging_job_id_chunk", "job_id", "chunk"),
    prefixes=["UNLOGGED"],
)


class ExportJob(Timestamps, Base):
    """Orders or products written as CSV, JSON or XML to a destination."""

    __tablename__ = "export_jobs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(8))
    destination: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20), server_default=QUEUED)
    location: Mapped[str | None] = mapped_column(String(1000))
    rows: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    message: Mapped[str] = mapped_column(Text, server_default="")
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    finished_at: Mapped[datetime | None]
