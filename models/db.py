"""Engine, sessions and the declarative base."""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property

from sqlalchemy import MetaData, create_engine, func
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from models import prepared

# PostgreSQL's own default names, so DDL written by hand (the spec's) and
# ours name constraints alike.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Timestamps:
    """created_at / updated_at kept by the database, in UTC."""

    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


def make_engine(url: str, pool_size: int = 5, connect_timeout: float = 5.0, **options) -> Engine:
    """A pooled engine whose connections fail fast when the server is away, and which keeps every connection
    it opens, up to three times `pool_size` (what used to be the pool and its overflow together).

    Nothing is opened before it is needed, so a quiet process holds few; but a gthread worker runs more
    requests at once (WEB_THREADS, 8) than a pool of DATABASE_POOL_SIZE (5) held, and an overflow connection,
    closed when returned, was opened again a moment later: a new server process whose catalog caches and
    prepared statements start empty (about 4 ms of PostgreSQL's CPU each time; under the money path's load
    one new session for every 17 paid orders).

    No pre-ping: a `SELECT 1` before every checkout cost a round trip per request (6-7 % of a checkout's
    time) to guard against what happens once per server restart. Disconnects are handled optimistically
    instead: the statement that meets a dead connection fails (an OperationalError, which the web answers
    with 503 + Retry-After and a task retries), and SQLAlchemy then invalidates the whole pool, so every
    other connection opened before the restart is replaced at its next checkout rather than failing too.
    """
    return create_engine(
        url,
        pool_size=pool_size * 3,
        max_overflow=0,
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args={"connect_timeout": max(1, int(connect_timeout)),
                      "options": "-c timezone=UTC"},
        **options,
    )


def _forget_pool_after_fork(engine: Engine) -> None:
    """A forked child (gunicorn --preload, Celery prefork) opens its own connections instead of sharing the
    parent's sockets; `close=False` leaves the parent's connections open for the parent."""
    ref = weakref.ref(engine)

    def forget() -> None:
        if (alive := ref()) is not None:
            alive.dispose(close=False)

    os.register_at_fork(after_in_child=forget)


class Database:
    """One engine and its session factory, built from a URL."""

    def __init__(self, url: str, pool_size: int = 5, connect_timeout: float = 5.0):
        self.engine = make_engine(url, pool_size, connect_timeout)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        _forget_pool_after_fork(self.engine)
        prepared.attach(self.engine)
        self._reads_args = (url, pool_size, connect_timeout)

    @cached_property
    def reads(self) -> Engine:
        """An engine whose connections stay in autocommit: for reads that need no transaction (catalog pages).

        Each statement reads its own snapshot, with no BEGIN and no ROLLBACK round trips; switching a
        connection of `engine` to autocommit for one checkout and back cost two round trips of its own.
        """
        url, pool_size, connect_timeout = self._reads_args
        engine = make_engine(url, pool_size, connect_timeout, isolation_level="AUTOCOMMIT")
        _forget_pool_after_fork(engine)
        prepared.attach(engine)
        return engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self.sessionmaker() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()
        if "reads" in self.__dict__:
            self.reads.dispose()
