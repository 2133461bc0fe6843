"""The results database: SQLAlchemy 2 models of every table.

PostgreSQL in a team deployment, SQLite embedded; the same models and the
same Alembic migrations serve both. Constraints are named so migrations can
refer to them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonType = JSON().with_variant(JSONB(), "postgresql")

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "pruned")
# `pruned`: a study's pruner stopped the trial early (`jobs.stop_reason` says why)
TERMINAL_STATUSES = ("succeeded", "failed", "cancelled", "pruned")
FAILURE_REASONS = (
    "user_error",
    "diverged",
    "timeout",
    "oom",
    "infra_lost",
    "exhausted_retries",
    "infra",
    "cancelled",
    "pruned",
)
STUDY_STATUSES = ("running", "succeeded", "cancelled", "failed")


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JsonType, list[Any]: JsonType}


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Benchmark(Base):
    __tablename__ = "benchmarks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    team_id: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[dict[str, Any]] = mapped_column(JsonType)
    baseline: Mapped[str | None] = mapped_column(String(100))
    tags: Mapped[list[Any]] = mapped_column(JsonType, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BenchmarkJob(Base):
    """A job's place in a benchmark; with `reuse`, one job can serve several benchmarks."""

    __tablename__ = "benchmark_jobs"

    benchmark_id: Mapped[str] = mapped_column(
        ForeignKey("benchmarks.id", ondelete="CASCADE"), primary_key=True
    )
    job_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    label: Mapped[str] = mapped_column(String(100))
    seed: Mapped[int] = mapped_column(Integer)
    reused: Mapped[bool] = mapped_column(Boolean, default=False)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("team_id", "idempotency_key", name="uq_jobs_team_idempotency_key"),
        Index("ix_jobs_team_created", "team_id", "created_at", "id"),
        Index("ix_jobs_team_status", "team_id", "status"),
        Index("ix_jobs_status_lease", "status", "lease_expires_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    team_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]] = mapped_column(JsonType)
    spec_hash: Mapped[str] = mapped_column(String(64), index=True)
    # columns people filter by, copied out of the spec
    optimizer: Mapped[str] = mapped_column(String(50), index=True)
    label: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(50), index=True)
    dataset: Mapped[str] = mapped_column(String(50), index=True)
    seed: Mapped[int] = mapped_column(Integer)
    tags: Mapped[list[Any]] = mapped_column(JsonType, default=list)
    queue: Mapped[str] = mapped_column(String(20), default="cpu")
    benchmark_id: Mapped[str | None] = mapped_column(
        ForeignKey("benchmarks.id", ondelete="SET NULL"), index=True
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))

    status: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    infra_failures: Mapped[int] = mapped_column(Integer, default=0)
    # Graceful hand-backs (SIGTERM, a deploy): counted apart, they spend no attempt.
    handbacks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # set with cancel_requested_at when a study's pruner stops the job: it then ends `pruned`
    stop_reason: Mapped[str | None] = mapped_column(Text)

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # progress
    step: Mapped[int] = mapped_column(BigInteger, default=0)
    epoch: Mapped[float] = mapped_column(Float, default=0.0)
    total_steps: Mapped[int | None] = mapped_column(BigInteger)
    fraction: Mapped[float] = mapped_column(Float, default=0.0)

    summary: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    failure_reason: Mapped[str | None] = mapped_column(String(30))
    error: Mapped[str | None] = mapped_column(Text)
    reproducibility: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    checkpoint_path: Mapped[str | None] = mapped_column(String(500))


class MetricPoint(Base):
    __tablename__ = "metric_points"
    __table_args__ = (
        UniqueConstraint("job_id", "name", "step", name="uq_metric_points_job_name_step"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    # No foreign key (checked per row it halved COPY speed): writers lock the job's row
    # once per batch and `delete_job` deletes a job's points (see migration 0004).
    job_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    step: Mapped[int] = mapped_column(BigInteger)
    epoch: Mapped[float] = mapped_column(Float)
    value: Mapped[float | None] = mapped_column(Float)  # NULL is NaN
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Artifact(Base):
    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("job_id", "name", name="uq_artifacts_job_name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))  # checkpoint | weights | plot | data
    path: Mapped[str] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    step: Mapped[int | None] = mapped_column(BigInteger)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    team_id: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    shapes: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Worker(Base):
    """A live worker process: what it consumes, stamped by the database's clock.

    `last_seen` is set to the database's `now()` at every heartbeat, so liveness
    never depends on the clocks of the worker or API machines.
    """

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # the Celery node name
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    queues: Mapped[list[Any]] = mapped_column(JsonType)
    devices: Mapped[list[Any]] = mapped_column(JsonType)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # This host's clock minus the database's, measured at its last heartbeat.
    clock_offset_seconds: Mapped[float | None] = mapped_column(Float)


class ResultCell(Base):
    """Jobs of one configuration rolled up for grouped results (PostgreSQL only).

    A cell is the jobs sharing team, status, optimizer, label, model, data set,
    benchmark, ρ and base lr. Metric '' counts them (`jobs`); a row per summary
    metric holds n, mean, `m2` = Σ(x − mean)² (two-pass, corrected), min and max.
    Recomputed from `JobResult`/`JobResultMetric` rows by `flatlab_results_refresh`
    for the cells `ResultDirty` names (migration 0004).
    """

    __tablename__ = "result_cells"
    __table_args__ = (Index("ix_result_cells_team_metric", "team_id", "metric"),)

    cell_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    metric: Mapped[str] = mapped_column(Text, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20))
    optimizer: Mapped[str] = mapped_column(String(50))
    label: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(50))
    dataset: Mapped[str] = mapped_column(String(50))
    benchmark_id: Mapped[str | None] = mapped_column(String(32))
    rho: Mapped[float | None] = mapped_column(Float)
    lr: Mapped[float | None] = mapped_column(Float)
    jobs: Mapped[int] = mapped_column(Integer)
    n: Mapped[int | None] = mapped_column(Integer)
    mean: Mapped[float | None] = mapped_column(Float)
    m2: Mapped[float | None] = mapped_column(Float)
    min: Mapped[float | None] = mapped_column(Float)
    max: Mapped[float | None] = mapped_column(Float)


class JobResult(Base):
    """A job's cell, typed (PostgreSQL keeps it by trigger; see `ResultCell`)."""

    __tablename__ = "job_results"
    __table_args__ = (Index("ix_job_results_cell_key", "cell_key"),)

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    cell_key: Mapped[str] = mapped_column(String(32))
    team_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20))
    optimizer: Mapped[str] = mapped_column(String(50))
    label: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(50))
    dataset: Mapped[str] = mapped_column(String(50))
    benchmark_id: Mapped[str | None] = mapped_column(String(32))
    rho: Mapped[float | None] = mapped_column(Float)
    lr: Mapped[float | None] = mapped_column(Float)


class ResultDirty(Base):
    """A job that joined (`added`) or left a cell since the cells were last refreshed.

    Appended by the trigger on `jobs`; consumed by `flatlab_results_refresh`.
    """

    __tablename__ = "result_dirty"
    __table_args__ = (Index("ix_result_dirty_team_id", "team_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    team_id: Mapped[str] = mapped_column(String(32))
    cell_key: Mapped[str] = mapped_column(String(32))
    job_id: Mapped[str] = mapped_column(String(32))
    added: Mapped[bool] = mapped_column(Boolean)


class JobResultMetric(Base):
    """A job's numeric summary value as a typed row (PostgreSQL keeps it by trigger)."""

    __tablename__ = "job_result_metrics"
    __table_args__ = (Index("ix_job_result_metrics_cell_metric", "cell_key", "metric"),)

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    metric: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    cell_key: Mapped[str] = mapped_column(String(32))


class Study(Base):
    """A hyperparameter search run by Optuna; its Optuna state is `optuna_name` in the same
    database (Optuna's own tables), its trials are jobs linked by `study_trials`."""

    __tablename__ = "studies"
    __table_args__ = (Index("ix_studies_team_created", "team_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    team_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[dict[str, Any]] = mapped_column(JsonType)
    optuna_name: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="running", index=True)
    metric: Mapped[str] = mapped_column(String(100))
    direction: Mapped[str] = mapped_column(String(10))
    tags: Mapped[list[Any]] = mapped_column(JsonType, default=list)
    # the tuned-comparison benchmark this study tunes one optimizer for
    benchmark_id: Mapped[str | None] = mapped_column(
        ForeignKey("benchmarks.id", ondelete="SET NULL"), index=True
    )
    label: Mapped[str | None] = mapped_column(String(100))
    best_value: Mapped[float | None] = mapped_column(Float)
    best_trial: Mapped[int | None] = mapped_column(Integer)
    best_params: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StudyTrial(Base):
    """One Optuna trial of a study and the job that runs it (a reused job may serve several)."""

    __tablename__ = "study_trials"

    study_id: Mapped[str] = mapped_column(
        ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JsonType)
    state: Mapped[str] = mapped_column(
        String(20), default="running"
    )  # running|complete|pruned|fail
    value: Mapped[float | None] = mapped_column(Float)
    grad_evals: Mapped[float | None] = mapped_column(Float)
    reported_step: Mapped[int] = mapped_column(BigInteger, default=-1)
    reused: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
