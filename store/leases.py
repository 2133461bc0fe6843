"""Leases: how a worker takes a job, keeps it, gives it back, and how lost jobs come back.

Every transition is one conditional UPDATE, so it is atomic on PostgreSQL and
SQLite alike: two workers racing for a job both run `claim_job`, one row
matches, the other sees zero rows and leaves. A worker writes only while it
holds the job (`status = 'running' AND worker_id = <its id>`), and a terminal
status is never the starting point of any statement here, so it never changes.
Functions flush; the caller commits (and should commit a claim at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from store.models import Job, utcnow


@dataclass(frozen=True)
class LeaseState:
    """What a heartbeat learns: whether this worker still holds the job, and if cancel is asked."""

    held: bool
    cancel_requested: bool


@dataclass(frozen=True)
class Requeued:
    """A job whose lease expired: back to `queued`, or `failed` when out of attempts."""

    job_id: str
    queue: str
    status: str


def claim_job(
    *,
    session: Session,
    job_id: str,
    worker_id: str,
    lease_seconds: float,
    now: datetime | None = None,
    team_cap: int | None = None,
) -> Job | None:
    """Take a queued job for `worker_id` (queued → running, attempts + 1); None if not queued.

    With `team_cap`, also None while the job's team already runs that many jobs:
    the job stays queued, untouched, for a later try. The count is part of the
    UPDATE's condition, and on PostgreSQL a transaction lock per team makes
    concurrent claims of one team take turns, so the cap is never overshot.
    """
    now = now or utcnow()
    conditions = [Job.id == job_id, Job.status == "queued", Job.cancel_requested_at.is_(None)]
    if team_cap is not None:
        team_id = session.scalar(select(Job.team_id).where(Job.id == job_id))
        if team_id is None:
            return None
        _lock_team(session, team_id)
        running = select(func.count()).where(Job.team_id == team_id, Job.status == "running")
        conditions.append(running.scalar_subquery() < team_cap)
    stmt = (
        update(Job)
        .where(*conditions)
        .values(
            status="running",
            attempts=Job.attempts + 1,
            worker_id=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            heartbeat_at=now,
            started_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if _changed(session, stmt) != 1:
        return None
    return session.get(Job, job_id, populate_existing=True)


def renew_lease(
    *,
    session: Session,
    job_id: str,
    worker_id: str,
    lease_seconds: float,
    now: datetime | None = None,
) -> LeaseState:
    """The heartbeat: extend the lease if this worker still holds the job; report cancel."""
    now = now or utcnow()
    stmt = (
        _held(job_id, worker_id)
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds), heartbeat_at=now)
        .execution_options(synchronize_session=False)
    )
    if _changed(session, stmt) != 1:
        return LeaseState(held=False, cancel_requested=False)
    asked = session.scalar(select(Job.cancel_requested_at).where(Job.id == job_id))
    return LeaseState(held=True, cancel_requested=asked is not None)


def update_progress(
    *,
    session: Session,
    job_id: str,
    worker_id: str,
    step: int,
    epoch: float,
    fraction: float,
    total_steps: int | None = None,
) -> bool:
    """Record how far the holder got; False when this worker no longer holds the job."""
    values: dict[str, Any] = {"step": step, "epoch": epoch, "fraction": fraction}
    if total_steps is not None:
        values["total_steps"] = total_steps
    return _set_if_held(session, job_id, worker_id, **values)


def set_job_fields(*, session: Session, job_id: str, worker_id: str, **values: Any) -> bool:
    """Set columns (reproducibility, checkpoint_path, …) on a job this worker holds."""
    return _set_if_held(session, job_id, worker_id, **values)


def finish_job(
    *,
    session: Session,
    job_id: str,
    worker_id: str,
    status: str,
    summary: dict[str, Any] | None = None,
    failure_reason: str | None = None,
    error: str | None = None,
    now: datetime | None = None,
) -> bool:
    """End a running job held by `worker_id` with a terminal status; False if it was not held.

    A `cancelled` job whose stop a study's pruner asked for (`jobs.stop_reason`
    set) ends `pruned`, with the pruner's message as its error.
    """
    if status not in ("succeeded", "failed", "cancelled"):
        raise ValueError(f"finish_job needs a terminal status, got {status!r}")
    values: dict[str, Any] = {"status": status, "failure_reason": failure_reason, "error": error}
    if status == "cancelled":
        values = _pruned_or(values)
    return _set_if_held(
        session,
        job_id,
        worker_id,
        summary=summary,
        finished_at=now or utcnow(),
        lease_expires_at=None,
        **values,
    )


def _pruned_or(values: dict[str, Any]) -> dict[str, Any]:
    """SQL values that end a job `pruned` when its `stop_reason` is set, else as `values`."""
    pruned = Job.stop_reason.is_not(None)
    return {
        "status": case((pruned, "pruned"), else_=values["status"]),
        "failure_reason": case((pruned, "pruned"), else_=values["failure_reason"]),
        "error": case((pruned, Job.stop_reason), else_=values["error"]),
    }


def release_job(*, session: Session, job_id: str, worker_id: str) -> bool:
    """Give a held job back to the queue (graceful shutdown); it resumes from its checkpoint."""
    stmt = (
        _held(job_id, worker_id)
        .values(status="queued", worker_id=None, lease_expires_at=None, enqueued_at=None)
        .execution_options(synchronize_session=False)
    )
    return _changed(session, stmt) == 1


def requeue_expired(*, session: Session, now: datetime | None = None) -> list[Requeued]:
    """Running jobs whose lease expired go back to `queued` (infra_failures + 1).

    A job already at `max_attempts` fails instead: `exhausted_retries` when it
    had retries and used them, `infra_lost` when it was allowed only one attempt.
    Each row is moved by its own conditional UPDATE, so a late heartbeat or a
    second reconciler makes it a no-op rather than a double move.
    """
    now = now or utcnow()
    expired = session.execute(
        select(Job.id, Job.queue, Job.attempts, Job.max_attempts, Job.worker_id).where(
            Job.status == "running", Job.lease_expires_at < now
        )
    ).all()
    out = []
    for job_id, queue, attempts, max_attempts, worker_id in expired:
        values: dict[str, Any] = {
            "infra_failures": Job.infra_failures + 1,
            "worker_id": None,
            "lease_expires_at": None,
        }
        if attempts < max_attempts:
            values.update(status="queued", enqueued_at=None)
        else:
            values.update(_out_of_attempts(attempts, worker_id, now))
        stmt = (
            update(Job)
            .where(Job.id == job_id, Job.status == "running", Job.lease_expires_at < now)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if _changed(session, stmt) == 1:
            out.append(Requeued(job_id=job_id, queue=queue, status=values["status"]))
    return out


def _out_of_attempts(attempts: int, worker_id: str | None, now: datetime) -> dict[str, Any]:
    reason = "exhausted_retries" if attempts > 1 else "infra_lost"
    return {
        "status": "failed",
        "failure_reason": reason,
        "error": (
            f"the worker running it ({worker_id}) stopped answering and the job has used "
            f"{attempts} of its attempts; resubmit it, or look at that worker's log"
        ),
        "finished_at": now,
    }


def queued_unheld(
    *, session: Session, enqueued_before: datetime, limit: int = 100
) -> list[tuple[str, str]]:
    """(id, queue) of queued jobs last sent to the broker before `enqueued_before`.

    A job never marked as sent counts from its creation. These are the jobs a
    lost broker message would leave waiting forever; the reconciler sends them again.
    """
    sent = func.coalesce(Job.enqueued_at, Job.created_at)
    stmt = (
        select(Job.id, Job.queue)
        .where(Job.status == "queued", sent < enqueued_before)
        .order_by(Job.created_at)
        .limit(limit)
    )
    return [(job_id, queue) for job_id, queue in session.execute(stmt)]


def touch_enqueued(*, session: Session, job_ids: list[str], now: datetime | None = None) -> None:
    """Mark queued jobs as sent to the broker just now (the reconciler's re-send)."""
    if job_ids:
        stmt = (
            update(Job)
            .where(Job.id.in_(job_ids), Job.status == "queued")
            .values(enqueued_at=now or utcnow())
            .execution_options(synchronize_session=False)
        )
        session.execute(stmt)


def cancel_if_requested(*, session: Session, job_id: str, now: datetime | None = None) -> bool:
    """A queued job with a cancel request becomes cancelled (it must never start)."""
    now = now or utcnow()
    stmt = (
        update(Job)
        .where(
            Job.id == job_id,
            Job.status == "queued",
            Job.cancel_requested_at.is_not(None),
        )
        .values(
            finished_at=now,
            **_pruned_or(
                {
                    "status": "cancelled",
                    "failure_reason": "cancelled",
                    "error": "cancelled before it started",
                }
            ),
        )
        .execution_options(synchronize_session=False)
    )
    return _changed(session, stmt) == 1


def _lock_team(session: Session, team_id: str) -> None:
    """Serialise claims of one team until commit (PostgreSQL; SQLite writes one at a time)."""
    if session.get_bind().dialect.name == "postgresql":
        key = func.hashtextextended(f"flatlab.team:{team_id}", 0)
        session.execute(select(func.pg_advisory_xact_lock(key)))


def _held(job_id: str, worker_id: str) -> Any:
    return update(Job).where(Job.id == job_id, Job.status == "running", Job.worker_id == worker_id)


def _set_if_held(session: Session, job_id: str, worker_id: str, **values: Any) -> bool:
    stmt = _held(job_id, worker_id).values(**values).execution_options(synchronize_session=False)
    return _changed(session, stmt) == 1


def _changed(session: Session, stmt: Any) -> int:
    result = session.execute(stmt)
    session.flush()
    return int(result.rowcount)  # type: ignore[attr-defined]
