"""What the API sends and receives. Requests of a job are `sam_core.spec.JobSpec` itself."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from sam_core.spec import JobSpec
from store.models import Artifact, Job, MetricPoint


def as_utc(value: datetime) -> datetime:
    """`value` as an aware UTC datetime."""
    # SQLite hands back naive datetimes; every stored time is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


def finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: they travel as null."""
    return value if value is not None and math.isfinite(value) else None


class JobCreate(JobSpec):
    """A training job spec (docs/training.md); the same model the worker runs."""


class Progress(BaseModel):
    step: int
    epoch: float
    fraction: float
    total_steps: int | None

    @model_validator(mode="after")
    def _fraction_of_the_steps(self) -> Progress:
        """`fraction` is step / total_steps: the stored column is written by progress
        events only, so after a checkpoint or a resume it lagged `step`."""
        if self.total_steps:
            self.fraction = min(self.step / self.total_steps, 1.0)
        return self


class Timings(BaseModel):
    created_at: UtcDatetime
    enqueued_at: UtcDatetime | None
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    heartbeat_at: UtcDatetime | None
    cancel_requested_at: UtcDatetime | None


class JobPublic(BaseModel):
    id: str
    name: str | None
    status: str
    spec_hash: str
    optimizer: str
    label: str | None
    model: str
    dataset: str
    seed: int
    tags: list[str]
    queue: str
    benchmark_id: str | None
    attempts: int = Field(description="starts so far, hand-backs and retries included")
    max_attempts: int
    infra_failures: int = Field(
        0, description="attempts lost to infrastructure (a vanished worker, storage), retried"
    )
    handbacks: int = Field(
        0, description="graceful hand-backs (a worker stopping for a deploy): spend no attempt"
    )
    progress: Progress
    timings: Timings
    summary: dict[str, Any] | None
    failure_reason: str | None
    error: str | None
    waiting_reason: str | None = Field(
        None, description="while queued: why it cannot start (no live worker consumes its queue)"
    )
    reproducibility: dict[str, Any] | None
    spec: dict[str, Any]

    @classmethod
    def from_job(cls, job: Job, waiting_reason: str | None = None) -> JobPublic:
        fields = {k: getattr(job, k) for k in cls.model_fields if hasattr(job, k)}
        fields["waiting_reason"] = waiting_reason if job.status == "queued" else None
        fields["progress"] = Progress.model_validate(job, from_attributes=True)
        fields["timings"] = Timings.model_validate(job, from_attributes=True)
        return cls.model_validate(fields)


class JobsQuery(BaseModel):
    """Filters of `GET /v1/jobs`; all must hold."""

    status: Literal["queued", "running", "succeeded", "failed", "cancelled", "pruned"] | None = None
    optimizer: str | None = None
    model: str | None = None
    dataset: str | None = None
    tag: str | None = None
    benchmark_id: str | None = None
    spec_hash: str | None = None


class JobsPublic(BaseModel):
    items: list[JobPublic]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null at end")


class JobDeleted(BaseModel):
    id: str
    deleted: dict[str, int] = Field(
        description="rows removed: metric_points, artifacts (their files too), benchmark_links"
    )


class JobStatusEvent(BaseModel):
    """The `data` of a `status` server-sent event."""

    id: str
    status: str
    attempts: int
    progress: Progress
    cancel_requested: bool
    failure_reason: str | None
    error: str | None

    @classmethod
    def from_job(cls, job: Job) -> JobStatusEvent:
        return cls(
            id=job.id,
            status=job.status,
            attempts=job.attempts,
            progress=Progress.model_validate(job, from_attributes=True),
            cancel_requested=job.cancel_requested_at is not None,
            failure_reason=job.failure_reason,
            error=job.error,
        )


class MetricPointPublic(BaseModel):
    step: int
    epoch: float
    value: float | None = Field(description="null when the value was NaN or infinite")
    time: UtcDatetime

    @classmethod
    def from_point(cls, point: MetricPoint) -> MetricPointPublic:
        return cls(step=point.step, epoch=point.epoch, value=finite(point.value), time=point.time)


class MetricsPublic(BaseModel):
    job_id: str
    metrics: dict[str, list[MetricPointPublic]] = Field(description="points by metric name")
    total_points: dict[str, int] = Field(
        description="points stored per series (at steps >= since_step), whatever this answer holds"
    )
    next_cursor: str | None = Field(
        None, description="pass as `cursor` for the rest of the points; null when none are left"
    )
    downsampled: bool = Field(False, description="true when `max_points` reduced a series")


class MetricColumns(BaseModel):
    step: list[int]
    epoch: list[float | None]
    value: list[float | None] = Field(description="null where the value was NaN or infinite")
    unix_time: list[float] = Field(description="seconds since 1970-01-01 UTC")


class MetricColumnsPublic(BaseModel):
    """`format=columns`: each series as arrays, one per column."""

    job_id: str
    format: Literal["columns"]
    series: dict[str, MetricColumns]
    total_points: dict[str, int]
    next_cursor: str | None
    downsampled: bool


class ArtifactPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    kind: str
    size_bytes: int
    step: int | None
    extra: dict[str, Any] | None
    created_at: UtcDatetime

    @classmethod
    def from_artifact(cls, artifact: Artifact) -> ArtifactPublic:
        return cls.model_validate(artifact)


class ArtifactsPublic(BaseModel):
    items: list[ArtifactPublic]


class CatalogEntry(BaseModel):
    name: str
    title: str
    parameters: dict[str, Any] = Field(description="JSON schema of the parameters, with defaults")
    task: str | None = None
    reference: str | None = None
    passes: str | None = None


class CatalogPublic(BaseModel):
    items: list[CatalogEntry]


class OptimizersPublic(CatalogPublic):
    base: dict[str, Any] = Field(description="JSON schema of `optimizer.base`")
    schedule: dict[str, Any] = Field(description="JSON schema of `optimizer.schedule`")


class FieldError(BaseModel):
    loc: str = Field(description="the field path as written: `optimizer.rho`, `data.path`")
    msg: str
    type: str | None = None
    suggestions: list[str] | None = Field(
        None, description="for an unknown name (`type: unknown_name`): the closest known names"
    )


class Problem(BaseModel):
    """RFC 9457 problem details; `errors` names each field at fault."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    code: str | None = None
    errors: list[FieldError] | None = None


class QueueHealth(BaseModel):
    """A broker queue: the live workers that consume it and the jobs waiting in it."""

    workers: list[str] = Field(description="ids of the live workers consuming this queue")
    queued_jobs: int = Field(description="jobs queued for this queue, all teams")
    waiting_reason: str | None = Field(
        description="why its queued jobs cannot start (no live worker), else null"
    )


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)


class Readiness(Health):
    queues: dict[str, QueueHealth] = Field(
        description="each queue's live workers (from their heartbeats) and queued jobs"
    )
    clock_skew: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "live workers whose clock is off the database's by more than "
            "FLATLAB_CLOCK_SKEW_SECONDS: worker id → seconds ahead (negative: behind). "
            "Leases use the database's clock; fix these hosts' time (NTP)"
        ),
    )
