"""Metric points: bulk, idempotent writes and filtered reads.

A point is keyed by `(job_id, name, step)`. Writes skip points already stored
(`ON CONFLICT DO NOTHING`), so a worker that replays a step after a crash
writes nothing twice: on PostgreSQL through COPY into a staging table, on
SQLite through chunked multi-row inserts. A NaN value is stored as
NULL (SQLite has no NaN; JSON has neither NaN nor infinity).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import islice
from typing import Any, cast

from sqlalchemy import Table, func, select, tuple_
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from store.models import MetricPoint, utcnow

SQLITE_CHUNK = 2000  # rows per executemany call

# PostgreSQL: COPY into a per-connection staging table, then one INSERT … SELECT
# with ON CONFLICT DO NOTHING, whose row count is the number of new points.
_STAGING = "flatlab_metric_staging"
_CREATE_STAGING = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} "
    "(name text, step bigint, epoch float8, value float8) ON COMMIT DELETE ROWS"
)
_INSERT_STAGED = (
    "INSERT INTO metric_points (job_id, name, step, epoch, value, time) "
    f"SELECT %s, name, step, epoch, value, %s FROM {_STAGING} "
    "ON CONFLICT (job_id, name, step) DO NOTHING"
)


def write_metric_points(
    *, session: Session, job_id: str, points: Iterable[tuple[str, int, float, float]]
) -> int:
    """Insert `(name, step, epoch, value)` points; return how many were new."""
    rows = (_row(point) for point in points)
    if session.get_bind().dialect.name == "postgresql":
        return _copy_postgresql(session, job_id, rows)
    return _insert_sqlite(session, job_id, rows)


def _row(point: tuple[str, int, float, float]) -> tuple[str, int, float, float | None]:
    name, step, epoch, value = point
    value = float(value)
    return name, int(step), float(epoch), None if math.isnan(value) else value


def _copy_postgresql(session: Session, job_id: str, rows: Iterable[tuple[Any, ...]]) -> int:
    connection = session.connection().connection.driver_connection
    dbapi = session.get_bind().dialect.loaded_dbapi
    try:
        with connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(_CREATE_STAGING)
            cursor.execute(f"TRUNCATE {_STAGING}")  # earlier batches of this transaction
            with cursor.copy(f"COPY {_STAGING} (name, step, epoch, value) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(_INSERT_STAGED, (job_id, utcnow()))
            return int(cursor.rowcount)
    except dbapi.Error as exc:
        # The raw driver connection bypasses SQLAlchemy's wrapping: wrap here, so a
        # cancelled or cut-off write is an OperationalError that callers retry.
        raise DBAPIError.instance("COPY metric points", None, exc, dbapi.Error) from exc


def _insert_sqlite(session: Session, job_id: str, rows: Iterable[tuple[Any, ...]]) -> int:
    table = cast(Table, MetricPoint.__table__)
    stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=["job_id", "name", "step"])
    now, written = utcnow(), 0
    it = iter(rows)
    while chunk := list(islice(it, SQLITE_CHUNK)):
        params = [
            {"job_id": job_id, "name": n, "step": s, "epoch": e, "value": v, "time": now}
            for n, s, e, v in chunk
        ]
        written += session.execute(stmt, params).rowcount  # type: ignore[attr-defined]
    return written


def read_metric_points(
    *,
    session: Session,
    job_id: str,
    names: Sequence[str] | None = None,
    since_step: int | None = None,
    after_id: int | None = None,
    limit: int = 100_000,
) -> list[MetricPoint]:
    """A job's points ordered by name then step (or by id when reading `after_id`).

    `since_step` keeps steps ≥ it; `after_id` keeps points written after the
    point with that id, which is how a live stream picks up where it left off.
    """
    stmt = select(MetricPoint).where(MetricPoint.job_id == job_id)
    if names:
        stmt = stmt.where(MetricPoint.name.in_(list(names)))
    if since_step is not None:
        stmt = stmt.where(MetricPoint.step >= since_step)
    if after_id is not None:
        stmt = stmt.where(MetricPoint.id > after_id).order_by(MetricPoint.id)
    else:
        stmt = stmt.order_by(MetricPoint.name, MetricPoint.step)
    return list(session.scalars(stmt.limit(limit)))


def metric_series_stats(
    *,
    session: Session,
    job_id: str,
    names: Sequence[str] | None = None,
    since_step: int | None = None,
) -> dict[str, int]:
    """Series name → how many points the job has stored (at steps ≥ `since_step`)."""
    stmt = select(MetricPoint.name, func.count()).where(MetricPoint.job_id == job_id)
    if names:
        stmt = stmt.where(MetricPoint.name.in_(list(names)))
    if since_step is not None:
        stmt = stmt.where(MetricPoint.step >= since_step)
    rows = session.execute(stmt.group_by(MetricPoint.name).order_by(MetricPoint.name))
    return {name: int(n) for name, n in rows}


def metric_rows(
    *,
    session: Session,
    job_id: str,
    names: Sequence[str] | None = None,
    since_step: int | None = None,
    after: tuple[str, int] | None = None,
    limit: int | None = None,
) -> Sequence[tuple[str, int, float, float | None, datetime]]:
    """`(name, step, epoch, value, time)` rows in (name, step) order, as plain tuples.

    Read as rows, not ORM objects. `after` is the `(name, step)` of the last point
    already read: reading goes on from the point after it, which is how pages of a
    long run follow each other.
    """
    stmt = select(
        MetricPoint.name, MetricPoint.step, MetricPoint.epoch, MetricPoint.value, MetricPoint.time
    ).where(MetricPoint.job_id == job_id)
    if names:
        stmt = stmt.where(MetricPoint.name.in_(list(names)))
    if since_step is not None:
        stmt = stmt.where(MetricPoint.step >= since_step)
    if after is not None:
        stmt = stmt.where(tuple_(MetricPoint.name, MetricPoint.step) > tuple_(*after))
    stmt = stmt.order_by(MetricPoint.name, MetricPoint.step)
    if limit is not None:
        stmt = stmt.limit(limit)
    return session.execute(stmt).all()  # type: ignore[return-value]
