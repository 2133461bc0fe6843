"""Jobs: create, read, list with keyset pagination, and request cancellation.

Every function takes a keyword-only `session`, flushes and leaves the commit to
the caller. Status moves only forward; `request_cancel` changes a queued job
with one conditional UPDATE so it cannot race a worker's claim.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, delete, exists, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from store.errors import Conflict, InvalidRequest, NotFound
from store.leases import db_clock
from store.models import (
    JOB_STATUSES,
    TERMINAL_STATUSES,
    Artifact,
    BenchmarkJob,
    Job,
    MetricPoint,
    utcnow,
)

if TYPE_CHECKING:
    from sam_core.spec import JobSpec


def queue_for(spec: JobSpec, auto_queue: str = "cpu") -> str:
    """The broker queue a spec runs on: `cuda` → gpu, `cpu` → cpu, `auto` → `auto_queue`."""
    device = spec.training.device
    return {"cuda": "gpu", "cpu": "cpu"}.get(device, auto_queue)


def create_job(
    *,
    session: Session,
    team_id: str,
    spec: JobSpec,
    max_attempts: int,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    benchmark_id: str | None = None,
    auto_queue: str = "cpu",
) -> Job:
    """Insert a queued job for a validated spec, copying the filter columns out of it."""
    job = Job(
        team_id=team_id,
        name=spec.name,
        spec=spec.model_dump(mode="json"),
        spec_hash=spec.hash(),
        optimizer=spec.optimizer.name,
        label=spec.optimizer.label,
        model=spec.model.name,
        dataset=spec.data.name,
        seed=spec.training.seed,
        tags=list(spec.tags),
        queue=queue_for(spec, auto_queue),
        benchmark_id=benchmark_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        max_attempts=max_attempts,
        status="queued",
        created_at=utcnow(),
    )
    session.add(job)
    session.flush()
    return job


def get_job(*, session: Session, job_id: str, team_id: str | None = None) -> Job:
    """The job, or `NotFound`; with `team_id`, another team's job is not found either."""
    job = session.get(Job, job_id)
    if job is None or (team_id is not None and job.team_id != team_id):
        raise NotFound(f"no job {job_id!r}", resource="job", id=job_id)
    return job


def find_job_by_idempotency_key(*, session: Session, team_id: str, key: str) -> Job | None:
    stmt = select(Job).where(Job.team_id == team_id, Job.idempotency_key == key)
    return session.scalars(stmt).one_or_none()


@dataclass(frozen=True)
class JobFilters:
    status: str | None = None
    optimizer: str | None = None
    model: str | None = None
    dataset: str | None = None
    tag: str | None = None
    benchmark_id: str | None = None
    spec_hash: str | None = None


def list_jobs(
    *,
    session: Session,
    team_id: str,
    filters: JobFilters | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Job], str | None]:
    """One page of a team's jobs, newest first, and the cursor of the next page (or None).

    Keyset pagination on `(created_at, id)`: a page costs the same at any depth
    and a job created while a client pages is never seen twice.
    """
    filters = filters or JobFilters()
    stmt = select(Job).where(Job.team_id == team_id, *_conditions(session, filters))
    if cursor is not None:
        created_at, job_id = decode_cursor(cursor)
        stmt = stmt.where(tuple_(Job.created_at, Job.id) < tuple_(created_at, job_id))
    stmt = stmt.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)
    jobs = list(session.scalars(stmt))
    if len(jobs) <= limit:
        return jobs, None
    last = jobs[limit - 1]
    return jobs[:limit], encode_cursor(last.created_at, last.id)


def _conditions(session: Session, filters: JobFilters) -> list[ColumnElement[bool]]:
    if filters.status is not None and filters.status not in JOB_STATUSES:
        raise InvalidRequest(
            f"unknown status {filters.status!r}; one of {', '.join(JOB_STATUSES)}",
            errors=[{"loc": "status", "msg": "unknown status", "type": "enum"}],
        )
    columns = {
        "status": Job.status,
        "optimizer": Job.optimizer,
        "model": Job.model,
        "dataset": Job.dataset,
        "benchmark_id": Job.benchmark_id,
        "spec_hash": Job.spec_hash,
    }
    out = [col == getattr(filters, key) for key, col in columns.items() if getattr(filters, key)]
    if filters.tag is not None:
        out.append(has_tag(session, Job.tags, filters.tag))
    return out


def has_tag(session: Session, tags: Any, tag: str) -> ColumnElement[bool]:
    """`tags` (a JSON list column) holds `tag`."""
    if session.get_bind().dialect.name == "postgresql":
        return tags.cast(JSONB).op("@>")(func.jsonb_build_array(tag))  # type: ignore[no-any-return]
    each = func.json_each(tags).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value == tag))


def encode_cursor(created_at: datetime, job_id: str) -> str:
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    raw = f"{created_at.isoformat()}|{job_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, job_id = raw.split("|", 1)
        if "\x00" in job_id:  # no id holds one, and PostgreSQL refuses it in any text
            raise ValueError("NUL in a cursor")
        return datetime.fromisoformat(stamp), job_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(
            f"invalid cursor {cursor!r}",
            errors=[{"loc": "cursor", "msg": "not a cursor from next_cursor", "type": "value"}],
        ) from exc


def request_cancel(*, session: Session, team_id: str, job_id: str) -> Job:
    """Cancel a queued job at once, or ask a running one to stop; a finished job is a Conflict.

    A queued job becomes `cancelled` with `failure_reason="cancelled"`; the
    conditional UPDATE loses cleanly to a worker that claimed it a moment before,
    and the job is then treated as running: `cancel_requested_at` is set and the
    worker stops it at its next step.
    """
    job = get_job(session=session, job_id=job_id, team_id=team_id)
    now = utcnow()
    cancelled = _update_if(
        session,
        job_id,
        "queued",
        status="cancelled",
        failure_reason="cancelled",
        error="cancelled before it started",
        cancel_requested_at=now,
        finished_at=now,
    )
    if not cancelled:
        _update_if(session, job_id, "running", cancel_requested_at=now)
    session.refresh(job)
    if job.status in TERMINAL_STATUSES and not cancelled:
        raise Conflict(f"job {job_id} is already {job.status}", id=job_id, job_status=job.status)
    return job


def cancel_jobs(*, session: Session, job_ids: Sequence[str]) -> tuple[int, int]:
    """Cancel the queued jobs among `job_ids` and ask the running ones to stop.

    The same two conditional UPDATEs as `request_cancel`, for many jobs at
    once; finished jobs are left as they are. Returns `(cancelled, stopping)`:
    how many queued jobs are now cancelled, and how many running jobs were
    asked to stop by this call.
    """
    if not job_ids:
        return 0, 0
    now, ids = utcnow(), list(job_ids)
    cancelled = session.execute(
        update(Job)
        .where(Job.id.in_(ids), Job.status == "queued")
        .values(
            status="cancelled",
            failure_reason="cancelled",
            error="cancelled before it started",
            cancel_requested_at=now,
            finished_at=now,
        )
    ).rowcount  # type: ignore[attr-defined]
    stopping = session.execute(
        update(Job)
        .where(Job.id.in_(ids), Job.status == "running", Job.cancel_requested_at.is_(None))
        .values(cancel_requested_at=now)
    ).rowcount  # type: ignore[attr-defined]
    return int(cancelled), int(stopping)


def delete_job(*, session: Session, team_id: str, job_id: str) -> dict[str, Any]:
    """Delete a finished job with its metric points, artifact rows and benchmark links.

    A queued or running job is a `Conflict`: a worker may hold it, so it must
    be cancelled first. Returns the counts removed and the artifact paths
    (relative to the artifacts folder) whose files the caller removes once
    the deletion is committed.
    """
    job = get_job(session=session, job_id=job_id, team_id=team_id)
    if job.status not in TERMINAL_STATUSES:
        raise Conflict(
            f"job {job_id} is {job.status}: cancel it first (POST /v1/jobs/{job_id}/cancel) "
            "and delete it once it is cancelled",
            id=job_id,
            job_status=job.status,
        )
    paths = list(session.scalars(select(Artifact.path).where(Artifact.job_id == job_id)))
    counts = {
        "metric_points": _delete(session, delete(MetricPoint).where(MetricPoint.job_id == job_id)),
        "artifacts": _delete(session, delete(Artifact).where(Artifact.job_id == job_id)),
        "benchmark_links": _delete(
            session, delete(BenchmarkJob).where(BenchmarkJob.job_id == job_id)
        ),
    }
    session.delete(job)
    session.flush()
    return {"counts": counts, "paths": paths}


def _delete(session: Session, stmt: Any) -> int:
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def _update_if(session: Session, job_id: str, current: str, **values: Any) -> bool:
    stmt = update(Job).where(Job.id == job_id, Job.status == current).values(**values)
    if current == "running":
        stmt = stmt.where(Job.cancel_requested_at.is_(None))
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def mark_enqueued(*, session: Session, job_id: str) -> None:
    """Record that the job's id reached the broker (the reconciler re-sends the others)."""
    stmt = update(Job).where(Job.id == job_id, Job.enqueued_at.is_(None))
    session.execute(stmt.values(enqueued_at=db_clock(session)))


def count_jobs_by_status(*, session: Session) -> dict[str, int]:
    rows = session.execute(select(Job.status, func.count()).group_by(Job.status))
    counts = dict.fromkeys(JOB_STATUSES, 0)
    counts.update({status: n for status, n in rows})
    return counts


def count_queued_by_queue(*, session: Session) -> dict[str, int]:
    """Queued jobs per broker queue, all teams."""
    rows = session.execute(
        select(Job.queue, func.count()).where(Job.status == "queued").group_by(Job.queue)
    )
    return {queue: n for queue, n in rows}
