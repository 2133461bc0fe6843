"""flatlab's configuration: one pydantic-settings object, read once from the environment.

Every variable is `FLATLAB_<FIELD>` (an optional `.env` file is read too). With
nothing set, flatlab runs embedded: SQLite and a filesystem broker under
`./.flatlab/`, auth off.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLATLAB_", env_file=".env", extra="ignore")

    home: Path = Field(Path(".flatlab"), description="embedded state: database, broker, files")
    database_url: str | None = None
    broker_url: str | None = None
    data_dir: Path | None = None
    artifact_dir: Path | None = None
    auth_required: bool | None = None
    max_upload_bytes: int = 200 * 1024 * 1024
    # An upload's arrays, each, once decompressed (np.savez_compressed files inflate).
    max_upload_array_bytes: int = 2 * 1024**3
    # All of an upload's arrays together, once decompressed (413 past it).
    max_upload_total_bytes: int = 2 * 1024**3
    # Every other request body (JSON), and how deep its arrays and objects may nest.
    max_json_bytes: int = 1024 * 1024
    max_json_depth: int = 32
    # Who may scrape GET /metrics with auth on: `Authorization: Bearer <this>`; unset,
    # nobody (it shows every team's job counts). With auth off it is open.
    metrics_token: SecretStr | None = None
    # A worker leaves a job queued while its team runs this many; it is sent again later.
    cap_retry_seconds: float = 10.0
    max_running_jobs_per_team: int = 64
    max_benchmark_jobs: int = 1000
    # Benchmark jobs that differ only in seed and scalar hyperparameters train as one
    # vectorised ensemble of at most this many members (below 2: never).
    ensemble_max_members: int = 32
    lease_seconds: int = 60
    heartbeat_seconds: float = 5.0
    max_attempts: int = 3
    # `live`: `gpu` while a live worker consumes it, else `cpu` (decided at submission).
    auto_queue: Literal["live", "cpu", "gpu"] = Field(
        "live", description="queue of jobs with training.device 'auto'"
    )
    # A worker whose row was not refreshed for this long counts as gone.
    worker_stale_seconds: float = Field(30.0, gt=0)
    # A host whose clock is off the database's by more than this is logged and listed
    # in /readyz (leases use the database's clock, so it decides nothing).
    clock_skew_seconds: float = Field(2.0, gt=0)
    # Wall-clock limit of a job whose spec sets no `limits.timeout_s`; None: no limit.
    job_timeout_seconds: int | None = Field(None, ge=1)
    # Refuse at submission a job whose data files are not in `datasets_dir` (turn off
    # where the API cannot see the workers' data folder).
    check_data_on_submit: bool = True
    reconcile_seconds: float = 15.0
    # How often a running job's buffered metric points and progress are written (a live
    # stream, and a study's pruner, hear of them this late at most).
    metric_flush_seconds: float = Field(1.0, gt=0, le=60)
    # Database connections of one API process. Its request sessions (one slot each),
    # the connections kept for work outside requests and its thread limit all follow
    # from this one number (`api.db_gate`), so no request waits on the pool in a thread.
    db_pool_size: int = Field(16, ge=1, le=1000)
    # Embedded filesystem broker: how often a worker looks for a new message (it cannot be
    # woken). Each look lists one folder per queue, so 20 ms costs little CPU.
    broker_poll_seconds: float = Field(0.02, gt=0, le=5)
    # how often the API's study driver asks, reports to and tells Optuna (0: off)
    study_poll_seconds: float = Field(2.0, ge=0)
    api_host: str = "127.0.0.1"
    api_port: int = 8000

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'flatlab.db').resolve()}"

    @property
    def broker(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def broker_dir(self) -> Path:
        return (self.home / "broker").resolve()

    @property
    def datasets_dir(self) -> Path:
        return (self.data_dir or self.home / "data").resolve()

    @property
    def artifacts_dir(self) -> Path:
        return (self.artifact_dir or self.home / "artifacts").resolve()

    @property
    def auth_on(self) -> bool:
        return self.auth_required if self.auth_required is not None else not self.embedded


@lru_cache
def get_settings() -> Settings:
    return Settings()
