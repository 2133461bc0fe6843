"""What the client returns: pydantic views of the API's JSON, tolerant of fields added later.

Each model keeps every field the server sends (`extra="allow"`), so a newer
server never breaks an older client; `raw` gives the JSON as received.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

TERMINAL = ("succeeded", "failed", "cancelled", "pruned")


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")

    @property
    def raw(self) -> dict[str, Any]:
        """The JSON object as the server sent it."""
        return self.model_dump(mode="json", by_alias=True)


class Progress(_Model):
    step: int = 0
    epoch: float = 0.0
    fraction: float = 0.0
    total_steps: int | None = None


class Job(_Model):
    """A training job (`GET /v1/jobs/{id}`)."""

    id: str
    status: str
    name: str | None = None
    label: str | None = None
    optimizer: str | None = None
    model: str | None = None
    dataset: str | None = None
    seed: int | None = None
    tags: list[str] = Field(default_factory=list)
    queue: str | None = None
    benchmark_id: str | None = None
    attempts: int = 0
    infra_failures: int = 0
    handbacks: int = 0
    progress: Progress = Field(default_factory=Progress)
    timings: dict[str, Any] = Field(default_factory=dict)
    summary: dict[str, Any] | None = None
    failure_reason: str | None = None
    error: str | None = None
    spec: dict[str, Any] = Field(default_factory=dict)

    @property
    def done(self) -> bool:
        """The job ended: succeeded, failed or cancelled."""
        return self.status in TERMINAL


class Benchmark(_Model):
    """A benchmark as created or listed: its grid size and body."""

    id: str
    name: str | None = None
    baseline: str | None = None
    tags: list[str] = Field(default_factory=list)
    created_at: datetime | None = None
    jobs: int | None = None
    created: int | None = None
    reused: int | None = None
    body: dict[str, Any] = Field(default_factory=dict)


class BenchmarkJob(_Model):
    job_id: str
    label: str
    seed: int
    status: str
    reused: bool = False


class BenchmarkReport(Benchmark):
    """`GET /v1/benchmarks/{id}`: progress, its jobs, and the comparison over seeds."""

    progress: dict[str, Any] = Field(default_factory=dict)
    job_list: list[BenchmarkJob] = Field(default_factory=list)
    comparison: dict[str, Any] = Field(default_factory=dict)
    tuning: dict[str, Any] | None = Field(
        None, description="tuned mode: each optimizer's study, best configuration and curve"
    )

    @property
    def done(self) -> bool:
        """Every job of the grid ended (in tuned mode: every re-run)."""
        return bool(self.job_list) and all(j.status in TERMINAL for j in self.job_list)

    @property
    def failed_jobs(self) -> list[BenchmarkJob]:
        return [j for j in self.job_list if j.status != "succeeded"]


class Artifact(_Model):
    name: str
    kind: str
    size_bytes: int
    step: int | None = None
    extra: dict[str, Any] | None = None
    created_at: datetime | None = None


class Dataset(_Model):
    """An uploaded data set; `data` is the spec block that trains on it."""

    id: str
    name: str
    size_bytes: int
    data: dict[str, str] = Field(default_factory=dict)


class ApiKey(_Model):
    """A team's API key as listed: never the secret."""

    id: str
    prefix: str | None = None
    read_only: bool | None = None
    created_at: datetime | None = None
    revoked: bool | None = None


class Study(_Model):
    """A study as created or listed: its objective, status and best so far."""

    id: str
    name: str | None = None
    status: str = "running"
    metric: str | None = None
    direction: str | None = None
    benchmark_id: str | None = None
    label: str | None = None
    best_value: float | None = None
    best_trial: int | None = None
    best_params: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None
    trials_by_state: dict[str, int] = Field(default_factory=dict)
    body: dict[str, Any] = Field(default_factory=dict)

    @property
    def done(self) -> bool:
        """The study asks for no more trials and none is running."""
        return self.status != "running"


class StudyReport(Study):
    """`GET /v1/studies/{id}`: every trial, trials and jobs by status, budget, tuning curve."""

    best: dict[str, Any] | None = None
    jobs_by_status: dict[str, int] = Field(default_factory=dict)
    budget: dict[str, Any] = Field(default_factory=dict)
    trials: list[dict[str, Any]] = Field(default_factory=list)
    history: list[dict[str, Any]] = Field(default_factory=list)
