"""Metric points: bulk, idempotent writes and filtered reads.

A point is keyed by `(job_id, name, step)`. Writes skip points already stored,
so a worker that replays a step after a crash writes nothing twice: on
PostgreSQL by dropping them before a binary COPY (writers of a job take turns),
on SQLite through chunked multi-row inserts with `ON CONFLICT DO NOTHING`. A NaN value is stored as
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

from store.leases import hold
from store.models import Job, MetricPoint, utcnow

SQLITE_CHUNK = 2000  # rows per executemany call

# PostgreSQL: writers of one job's points take turns (an advisory lock per job, held
# to commit); each drops the points already stored, then binary-COPYs the rest
# straight into the table.
_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0)) FROM jobs WHERE id = %s FOR KEY SHARE"
)
_LAST_STEPS = (
    "SELECT n, (SELECT max(step) FROM metric_points WHERE job_id = %s AND name = n) "
    "FROM unnest(%s::text[]) AS n"
)
_STORED = (
    "SELECT m.name, m.step FROM metric_points m "
    "JOIN unnest(%s::text[], %s::int8[]) AS u(name, step) ON m.name = u.name AND m.step = u.step "
    "WHERE m.job_id = %s"
)
_COPY = "COPY metric_points (job_id, name, step, epoch, value, time) FROM STDIN (FORMAT BINARY)"
_COPY_TYPES = ["varchar", "varchar", "int8", "float8", "float8", "timestamptz"]

Row = tuple[str, int, float, float | None]


def write_metric_points(
    *,
    session: Session,
    job_id: str,
    points: Iterable[tuple[str, int, float, float]],
    holder: str | None = None,
) -> int:
    """Insert `(name, step, epoch, value)` points; return how many were new.

    Idempotent: a point whose `(name, step)` the job already has, or that came
    earlier in `points`, is skipped, so a replayed batch writes nothing twice.
    A job that no longer exists gets nothing (0). On PostgreSQL the points go in
    by binary COPY (no statement per point) after the job's row is locked in
    KEY SHARE mode (it cannot be deleted meanwhile) and an advisory lock on the
    job serialises its writers; both are held until the caller's transaction ends.
    With `holder` (the writing attempt's worker id) the write is fenced: it
    raises `store.leases.LeaseLost`, writing nothing, unless that attempt
    still holds the running job, checked in this same transaction.
    """
    if holder is not None:
        hold(session=session, job_id=job_id, worker_id=holder)
    rows = (_row(point) for point in points)
    if session.get_bind().dialect.name == "postgresql":
        return _copy_postgresql(session, job_id, list(rows))
    return _insert_sqlite(session, job_id, rows)


def _row(point: tuple[str, int, float, float]) -> Row:
    name, step, epoch, value = point
    value = float(value)
    return name, int(step), float(epoch), None if math.isnan(value) else value


def _copy_postgresql(session: Session, job_id: str, rows: list[Row]) -> int:
    if not rows:
        return 0
    connection = session.connection().connection.driver_connection
    dbapi = session.get_bind().dialect.loaded_dbapi
    try:
        with connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(_LOCK, ("flatlab_metric_points:" + job_id, job_id))
            if cursor.fetchone() is None:
                return 0  # the job was deleted: nothing to write to
            fresh = _unstored(cursor, job_id, rows)
            if fresh:
                now = utcnow()
                with cursor.copy(_COPY) as copy:
                    copy.set_types(_COPY_TYPES)
                    for name, step, epoch, value in fresh:
                        copy.write_row((job_id, name, step, epoch, value, now))
            return len(fresh)
    except dbapi.Error as exc:
        # The raw driver connection bypasses SQLAlchemy's wrapping: wrap here, so a
        # cancelled or cut-off write is an OperationalError that callers retry.
        raise DBAPIError.instance("COPY metric points", None, exc, dbapi.Error) from exc


def _unstored(cursor: Any, job_id: str, rows: list[Row]) -> list[Row]:
    """The rows whose `(name, step)` is neither stored nor earlier in `rows`.

    One index probe per series name finds its last stored step; only points at
    or before it (a replay) are looked up one by one.
    """
    cursor.execute(_LAST_STEPS, (job_id, sorted({name for name, *_ in rows})))
    last = dict(cursor.fetchall())
    maybe = [(n, s) for n, s, _, _ in rows if last[n] is not None and s <= last[n]]
    seen: set[tuple[str, int]] = set()
    if maybe:
        names, steps = zip(*maybe, strict=True)
        cursor.execute(_STORED, (list(names), list(steps), job_id))
        seen = {(name, int(step)) for name, step in cursor.fetchall()}
    fresh = []
    for row in rows:
        if (row[0], row[1]) not in seen:
            seen.add((row[0], row[1]))
            fresh.append(row)
    return fresh


def _insert_sqlite(session: Session, job_id: str, rows: Iterable[tuple[Any, ...]]) -> int:
    if session.scalar(select(Job.id).where(Job.id == job_id)) is None:
        return 0  # the job was deleted: nothing to write to
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
