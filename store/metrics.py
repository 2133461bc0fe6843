"""Metric points: bulk, idempotent writes and filtered reads.

A point is keyed by `(job_id, name, step)`. Writes are multi-row
`INSERT … ON CONFLICT DO NOTHING` statements in chunks, so a worker that
replays a step after a crash writes nothing twice. A NaN value is stored as
NULL (SQLite has no NaN; JSON has neither NaN nor infinity).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.models import MetricPoint, utcnow

# Rows per statement: 6 bound values a row stays under PostgreSQL's 65,535 and
# SQLite's 32,766 parameters.
CHUNK_ROWS = {"postgresql": 5000, "sqlite": 2000}


def write_metric_points(
    *, session: Session, job_id: str, points: Iterable[tuple[str, int, float, float]]
) -> int:
    """Insert `(name, step, epoch, value)` points; return how many were new."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    rows = (_row(job_id, point, now) for point in points)
    written = 0
    for chunk in _chunks(rows, CHUNK_ROWS.get(dialect, 500)):
        stmt = insert(MetricPoint).values(chunk)
        stmt = stmt.on_conflict_do_nothing(index_elements=["job_id", "name", "step"])
        written += session.execute(stmt).rowcount  # type: ignore[attr-defined]
    return written


def _row(job_id: str, point: tuple[str, int, float, float], now: datetime) -> dict[str, Any]:
    name, step, epoch, value = point
    value = float(value)
    return {
        "job_id": job_id,
        "name": name,
        "step": int(step),
        "epoch": float(epoch),
        "value": None if math.isnan(value) else value,
        "time": now,
    }


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


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
