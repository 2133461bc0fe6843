"""Engines and sessions. Repositories flush; the caller (request or task) commits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def make_engine(
    url: str, *, idle_in_transaction_s: float | None = None, **kwargs: object
) -> Engine:
    """An engine for PostgreSQL (psycopg 3) or SQLite, set up for concurrent workers.

    `idle_in_transaction_s` (PostgreSQL): the server ends a session that sits
    that long inside a transaction. A worker's transactions last milliseconds;
    one frozen mid-transaction (SIGSTOP, a paused VM) would otherwise keep its
    job's row locked, and the reconciler could never hand the job to another.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    kwargs.setdefault("pool_pre_ping", True)
    connect_args: dict[str, object] = {"connect_timeout": 5}
    if idle_in_transaction_s is not None:
        ms = max(1, int(idle_in_transaction_s * 1000))
        connect_args["options"] = f"-c idle_in_transaction_session_timeout={ms}"
    kwargs.setdefault("connect_args", connect_args)
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cursor = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
