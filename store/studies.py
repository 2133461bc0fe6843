"""Studies: the row, its trials (one job each), and what the driver and report read.

A study's Optuna state lives in Optuna's own tables (same database); these rows
say which job runs which trial and what the driver has fed to Optuna so far.
Functions flush; the caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from store.errors import NotFound
from store.models import Benchmark, Job, MetricPoint, Study, StudyTrial, new_id, utcnow
from store.pages import newest_first


def create_study(
    *,
    session: Session,
    team_id: str,
    body: dict[str, Any],
    name: str | None,
    metric: str,
    direction: str,
    tags: list[str],
    benchmark_id: str | None = None,
    label: str | None = None,
) -> Study:
    study_id = new_id()
    study = Study(
        id=study_id,
        optuna_name=f"flatlab-{study_id}",
        team_id=team_id,
        name=name,
        body=body,
        metric=metric,
        direction=direction,
        tags=tags,
        benchmark_id=benchmark_id,
        label=label,
        status="running",
        created_at=utcnow(),
    )
    session.add(study)
    session.flush()
    return study


def get_study(*, session: Session, study_id: str, team_id: str) -> Study:
    """The team's study, or `NotFound` (another team's study is not found either)."""
    study = session.get(Study, study_id)
    if study is None or study.team_id != team_id:
        raise NotFound(f"no study {study_id!r}", resource="study", id=study_id)
    return study


def list_studies(
    *,
    session: Session,
    team_id: str,
    status: str | None = None,
    benchmark_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Study], str | None]:
    """One page of the team's studies, newest first."""
    stmt = select(Study).where(Study.team_id == team_id)
    if status is not None:
        stmt = stmt.where(Study.status == status)
    if benchmark_id is not None:
        stmt = stmt.where(Study.benchmark_id == benchmark_id)
    return newest_first(session=session, stmt=stmt, model=Study, limit=limit, cursor=cursor)


def running_study_ids(*, session: Session) -> list[str]:
    stmt = select(Study.id).where(Study.status == "running").order_by(Study.created_at)
    return list(session.scalars(stmt))


def lock_study(*, session: Session, study_id: str) -> Study | None:
    """The running study, locked until commit; None when another driver holds it (PostgreSQL
    `FOR UPDATE SKIP LOCKED`; SQLite writes one at a time) or it is no longer running."""
    stmt = select(Study).where(Study.id == study_id, Study.status == "running")
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return session.scalars(stmt).first()


def lock_benchmark(*, session: Session, benchmark_id: str) -> Benchmark | None:
    """The benchmark row, locked until commit; None when another driver holds it."""
    stmt = select(Benchmark).where(Benchmark.id == benchmark_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return session.scalars(stmt).first()


def study_trials(*, session: Session, study_id: str) -> list[tuple[StudyTrial, Job]]:
    """The study's trials and their jobs, by trial number."""
    stmt = (
        select(StudyTrial, Job)
        .join(Job, Job.id == StudyTrial.job_id)
        .where(StudyTrial.study_id == study_id)
        .order_by(StudyTrial.number)
    )
    return [(trial, job) for trial, job in session.execute(stmt).tuples()]


def add_trial(
    *,
    session: Session,
    study_id: str,
    number: int,
    job_id: str,
    params: dict[str, Any],
    reused: bool,
) -> StudyTrial:
    trial = StudyTrial(
        study_id=study_id,
        number=number,
        job_id=job_id,
        params=params,
        state="running",
        reported_step=-1,
        reused=reused,
        created_at=utcnow(),
    )
    session.add(trial)
    session.flush()
    return trial


def new_points(
    *, session: Session, job_id: str, name: str, after_step: int
) -> list[tuple[int, float]]:
    """The job's `name` points after `after_step`, in step order (NaN points left out)."""
    stmt = (
        select(MetricPoint.step, MetricPoint.value)
        .where(MetricPoint.job_id == job_id, MetricPoint.name == name)
        .where(MetricPoint.step > after_step, MetricPoint.value.is_not(None))
        .order_by(MetricPoint.step)
    )
    return [(int(s), float(v)) for s, v in session.execute(stmt).tuples() if v is not None]


def request_prune(*, session: Session, job_id: str, reason: str) -> bool:
    """Ask a running job to stop and end `pruned` with `reason`; False if it is not running
    or already stopping."""
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.status == "running", Job.cancel_requested_at.is_(None))
        .values(cancel_requested_at=utcnow(), stop_reason=reason)
        .execution_options(synchronize_session=False)
    )
    changed = int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]
    session.flush()
    return changed == 1


def same_spec_job(
    *, session: Session, team_id: str, spec_hash: str, study_job_ids: Sequence[str]
) -> str | None:
    """A job that already trains this spec: one of the study's own that has not failed,
    else the team's newest succeeded one."""
    if study_job_ids:
        stmt = select(Job.id).where(
            Job.id.in_(list(study_job_ids)),
            Job.spec_hash == spec_hash,
            Job.status.in_(("queued", "running", "succeeded")),
        )
        found = session.scalars(stmt).first()
        if found is not None:
            return found
    stmt = (
        select(Job.id)
        .where(Job.team_id == team_id, Job.spec_hash == spec_hash, Job.status == "succeeded")
        .order_by(Job.finished_at.desc())
    )
    return session.scalars(stmt).first()


def trial_counts(*, session: Session, study_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """study id → trial state → count."""
    out: dict[str, dict[str, int]] = {s: {} for s in study_ids}
    if not study_ids:
        return out
    stmt = (
        select(StudyTrial.study_id, StudyTrial.state, func.count())
        .where(StudyTrial.study_id.in_(list(study_ids)))
        .group_by(StudyTrial.study_id, StudyTrial.state)
    )
    for study_id, state, n in session.execute(stmt).tuples():
        out[study_id][state] = int(n)
    return out
