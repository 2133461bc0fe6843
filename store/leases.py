"""Leases: how a worker takes a job, keeps it, gives it back, and how lost jobs come back.

Every transition is one conditional UPDATE, so it is atomic on PostgreSQL and
SQLite alike: two workers racing for a job both run `claim_job`, one row
matches, the other sees zero rows and leaves. A worker writes only while it
holds the job (`status = 'running' AND worker_id = <its id>`), and a terminal
status is never the starting point of any statement here, so it never changes.
Functions flush; the caller commits (and should commit a claim at once).

Two rules keep a stale attempt (frozen past its lease, cut off by a partition)
from writing over the attempt that replaced it:

- The fence. Every write an attempt makes goes through a statement or a
  transaction that checks `status = 'running' AND worker_id = <its id>` (the
  id is new for every attempt, so it is the attempt's token). Row updates
  carry it in their WHERE; other writes (metric points, artifact rows, the
  rename of a checkpoint into place) first call `hold`, which locks the job's
  row in the same transaction and raises `LeaseLost` when the attempt no
  longer holds it.
- The database's clock. Lease stamps and expiry checks use `now()` in the
  statement on PostgreSQL, so a host whose clock runs ahead or behind neither
  steals jobs nor loses them. (SQLite runs in the worker's own process, so
  there the host's clock is the database's.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from store.models import Job, utcnow


class LeaseLost(Exception):
    """This attempt no longer holds its job (the lease expired, another attempt has it,
    or it ended): the attempt must write nothing more and stop."""

    def __init__(self, job_id: str, worker_id: str) -> None:
        super().__init__(f"job {job_id}: lease lost (attempt {worker_id} no longer holds it)")
        self.job_id, self.worker_id = job_id, worker_id


def idled_out(exc: BaseException) -> bool:
    """Whether `exc` is PostgreSQL ending this attempt's connection because it sat in
    a transaction past `idle_in_transaction_session_timeout` (SQLSTATE 25P03).

    Worker sessions set that timeout to the lease length, so an attempt frozen
    while holding its job's row lock has, by then, lost its lease: it must stop
    as if `LeaseLost` had been raised, writing nothing more.
    """
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "25P03"


def hold(*, session: Session, job_id: str, worker_id: str) -> None:
    """The fence of a write: raise `LeaseLost` unless `worker_id` holds the running job.

    On PostgreSQL the job's row stays locked (`FOR NO KEY UPDATE`; on SQLite
    the database's write lock is taken) until the caller's transaction ends,
    so the lease cannot move to another attempt between this check and the
    caller's writes: they commit under the fence, or not at all. Inserting
    the job's metric points or artifact rows is not blocked by the lock
    (their foreign key takes only a key-share lock).
    """
    if session.get_bind().dialect.name != "postgresql":
        # SQLite: a no-op conditional UPDATE takes the database's write lock with the check.
        stmt = _held(job_id, worker_id).values(status=Job.status)
        if _changed(session, stmt.execution_options(synchronize_session=False)) != 1:
            raise LeaseLost(job_id, worker_id)
        return
    stmt = select(Job.status, Job.worker_id).where(Job.id == job_id).with_for_update(key_share=True)
    row = session.execute(stmt).one_or_none()
    if row is None or row.status != "running" or row.worker_id != worker_id:
        raise LeaseLost(job_id, worker_id)


def db_clock(session: Session, now: datetime | None = None) -> Any:
    """`now` if given, else the database's clock: `now()` in the statement on PostgreSQL.

    SQLite is embedded in this process, so its clock is this host's.
    """
    if now is not None:
        return now
    if session.get_bind().dialect.name == "postgresql":
        return func.now()
    return utcnow()


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
    now = db_clock(session, now)
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
    now = db_clock(session, now)
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
        finished_at=db_clock(session, now),
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
    """Give a held job back to the queue (a graceful hand-back); it resumes from its checkpoint.

    A hand-back is counted in `handbacks`, apart from failures: it spends none
    of the job's attempts, so rolling deploys never exhaust a long job.
    """
    stmt = (
        _held(job_id, worker_id)
        .values(
            status="queued",
            worker_id=None,
            lease_expires_at=None,
            enqueued_at=None,
            handbacks=Job.handbacks + 1,
        )
        .execution_options(synchronize_session=False)
    )
    return _changed(session, stmt) == 1


def retry_job(
    *,
    session: Session,
    job_id: str,
    worker_id: str,
    error: str,
    summary: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> str | None:
    """An infrastructure failure the attempt saw itself (storage, environment, a lost broker):
    back to `queued` (`infra_failures` + 1, `error` says why, `summary` kept when training
    had finished), or `failed` with `infra` once out of attempts. The new status, or None
    when this worker no longer held the job."""
    base: dict[str, Any] = {
        "infra_failures": Job.infra_failures + 1,
        "worker_id": None,
        "lease_expires_at": None,
    }
    if summary is not None:
        base["summary"] = summary
    again = (
        _held(job_id, worker_id)
        .where(_attempts_left())
        .values(status="queued", enqueued_at=None, error=error, **base)
        .execution_options(synchronize_session=False)
    )
    if _changed(session, again) == 1:
        return "queued"
    stmt = (
        _held(job_id, worker_id)
        .values(
            status="failed",
            failure_reason="infra",
            error=error,
            finished_at=db_clock(session, now),
            **base,
        )
        .execution_options(synchronize_session=False)
    )
    return "failed" if _changed(session, stmt) == 1 else None


def _attempts_left() -> Any:
    """Attempts spent (claims less graceful hand-backs) are fewer than allowed."""
    return Job.attempts - Job.handbacks < Job.max_attempts


def requeue_expired(*, session: Session, now: datetime | None = None) -> list[Requeued]:
    """Running jobs whose lease expired go back to `queued` (infra_failures + 1).

    Expiry is judged by the database's clock. A job that has spent
    `max_attempts` (graceful hand-backs not counted) fails instead: `exhausted_retries` when it
    had retries and used them, `infra_lost` when it was allowed only one attempt.
    Each row is moved by its own conditional UPDATE, so a late heartbeat or a
    second reconciler makes it a no-op rather than a double move.
    """
    now = db_clock(session, now)
    expired = session.execute(
        select(
            Job.id, Job.queue, Job.attempts, Job.handbacks, Job.max_attempts, Job.worker_id
        ).where(Job.status == "running", Job.lease_expires_at < now)
    ).all()
    out = []
    for job_id, queue, attempts, handbacks, max_attempts, worker_id in expired:
        values: dict[str, Any] = {
            "infra_failures": Job.infra_failures + 1,
            "worker_id": None,
            "lease_expires_at": None,
        }
        if attempts - handbacks < max_attempts:
            values.update(status="queued", enqueued_at=None)
        else:
            values.update(_out_of_attempts(attempts - handbacks, worker_id, now))
        stmt = (
            update(Job)
            .where(Job.id == job_id, Job.status == "running", Job.lease_expires_at < now)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if _changed(session, stmt) == 1:
            out.append(Requeued(job_id=job_id, queue=queue, status=values["status"]))
    return out


def _out_of_attempts(attempts: int, worker_id: str | None, now: Any) -> dict[str, Any]:
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
            .values(enqueued_at=db_clock(session, now))
            .execution_options(synchronize_session=False)
        )
        session.execute(stmt)


def cancel_if_requested(*, session: Session, job_id: str, now: datetime | None = None) -> bool:
    """A queued job with a cancel request becomes cancelled (it must never start)."""
    now = db_clock(session, now)
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
