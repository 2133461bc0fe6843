"""A job's metric series for `GET /v1/jobs/{id}/metrics`: complete pages, or downsampled curves.

Without `max_points` the points come in pages of `limit`, in (name, step)
order, and `next_cursor` is set whenever points are left: nothing is cut
without saying so. With `max_points` every series is reduced on its own to at
most that many points (so no series is starved by another), keeping its
extremes: min–max decimation per bucket of steps, which is what a plot of
the curve needs to show the same peaks and dips as the full series.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from operator import itemgetter

from sqlalchemy.orm import Session

from api.services.names import check_metrics
from store.errors import InvalidRequest
from store.metrics import metric_rows, metric_series_stats

Row = tuple[str, int, float, float | None, datetime]  # name, step, epoch, value, time
MAX_STEP = 2**63 - 1  # steps are BIGINT


@dataclass(frozen=True)
class SeriesPage:
    points: dict[str, list[Row]]
    total_points: dict[str, int]
    next_cursor: str | None
    downsampled: bool = False


def check_names(*, session: Session, job_id: str, names: list[str]) -> None:
    """Each asked-for series must be one a run records, or one this job has (else 422)."""
    recorded = metric_series_stats(session=session, job_id=job_id)
    check_metrics("names", names, recorded, summary=False)


def read_page(
    *,
    session: Session,
    job_id: str,
    names: list[str] | None,
    since_step: int | None,
    limit: int,
    cursor: str | None,
) -> SeriesPage:
    """Up to `limit` points after `cursor`, and the cursor of the rest (None at the end)."""
    after = decode_cursor(cursor) if cursor is not None else None
    totals = metric_series_stats(session=session, job_id=job_id, names=names, since_step=since_step)
    rows = metric_rows(
        session=session,
        job_id=job_id,
        names=names,
        since_step=since_step,
        after=after,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    grouped = {name: list(series) for name, series in groupby(rows, key=itemgetter(0))}
    next_cursor = encode_cursor(rows[-1][0], rows[-1][1]) if more else None
    return SeriesPage(grouped, totals, next_cursor)


def read_downsampled(
    *,
    session: Session,
    job_id: str,
    names: list[str] | None,
    since_step: int | None,
    max_points: int,
) -> SeriesPage:
    """Every series reduced to at most `max_points` points by `downsample`; one page."""
    totals = metric_series_stats(session=session, job_id=job_id, names=names, since_step=since_step)
    rows = metric_rows(session=session, job_id=job_id, names=names, since_step=since_step)
    points = {
        name: downsample(list(series), max_points)
        for name, series in groupby(rows, key=itemgetter(0))
    }
    reduced = any(len(points[name]) < totals.get(name, 0) for name in points)
    return SeriesPage(points, totals, None, downsampled=reduced)


def downsample(series: list[Row], max_points: int) -> list[Row]:
    """At most `max_points` (≥ 4) points of a step-ordered series, keeping its extremes.

    Min–max decimation (the M4 family, Jugel et al., VLDB 2014, without the
    per-pixel first/last): the first and last points are kept; the steps
    between them are cut into B = (max_points − 2) // 2 buckets of equal width,
    and each bucket keeps the point of its smallest and of its largest value
    (one point if they coincide), in step order. Null values (NaN or
    infinity) do not count as extremes; a bucket holding nothing but nulls
    keeps its first point, so a divergence stays visible. A series of at most
    `max_points` points is returned whole.
    """
    if len(series) <= max_points:
        return series
    first, inner, last = series[0], series[1:-1], series[-1]
    buckets = (max_points - 2) // 2
    low, span = inner[0][1], inner[-1][1] - inner[0][1] + 1
    kept: list[Row] = [first]
    for _, members in groupby(inner, key=lambda r: (r[1] - low) * buckets // span):
        kept.extend(_extremes(list(members)))
    kept.append(last)
    return kept


def _extremes(bucket: list[Row]) -> list[Row]:
    valued = [r for r in bucket if r[3] is not None]
    if not valued:
        return bucket[:1]
    lowest = min(valued, key=lambda r: r[3])  # type: ignore[arg-type,return-value]
    highest = max(valued, key=lambda r: r[3])  # type: ignore[arg-type,return-value]
    return sorted({lowest, highest}, key=lambda r: r[1])


def encode_cursor(name: str, step: int) -> str:
    return base64.urlsafe_b64encode(f"{step}|{name}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    """`(name, step)` of the last point of the previous page; a 400 if not a cursor of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        step_text, name = raw.split("|", 1)
        step = int(step_text)
        if "\x00" in name:  # no series name holds one; PostgreSQL refuses it in any text
            raise ValueError("NUL in a cursor")
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad_cursor(cursor) from exc
    if not 0 <= step <= MAX_STEP:
        raise _bad_cursor(cursor)
    return name, step


def _bad_cursor(cursor: str) -> InvalidRequest:
    return InvalidRequest(
        f"invalid cursor {cursor[:100]!r}",
        errors=[{"loc": "cursor", "msg": "not a cursor from next_cursor", "type": "value"}],
    )
