"""A whole flatlab stack on private servers, for tests that break things on purpose.

Once per session: a PostgreSQL cluster and a Redis server of our own (see
`servers.py`; the shared ones are never stopped or flushed), the migrations,
the API under uvicorn and an API key. Workers are started by each test with
`start_worker` and are gone when it ends, so a test decides when there are
none, which one dies and which one takes over. Leases are short (3 s, renewed
every 0.5 s, reconciled every second) so that a lost worker is noticed at once.

The helpers of the integration stack (`Process`, `free_port`, readiness) are
imported from `tests/integration/conftest.py`, not copied.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import migrations
from flatlab.settings import Settings
from store.db import make_engine, make_session_factory, session_scope
from store.models import Artifact, Job, MetricPoint
from tests.faults.servers import PrivatePostgres, PrivateRedis
from tests.integration.conftest import (
    TERMINAL,
    Process,
    create_key,
    running_api,
    stack_environment,
)
from tests.integration.specs import TINY, spec

# Long enough to be caught mid-run (a few seconds in a worker), checkpointed every epoch.
LONG = spec(
    TINY,
    name="faults-long",
    **{"training.epochs": 150, "training.log_every_steps": 2},
)
TIMINGS = ("train_seconds", "measure_seconds", "steps_per_second", "wall_seconds")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def broker() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def fault_env(
    postgres: PrivatePostgres, broker: PrivateRedis, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    database_url = postgres.create_database("flatlab")
    migrations.upgrade(database_url)
    home = tmp_path_factory.mktemp("flatlab-home")
    return stack_environment(
        home,
        database_url,
        broker.url,
        LEASE_SECONDS="3",
        RECONCILE_SECONDS="1",
        MAX_ATTEMPTS="3",
        STUDY_POLL_SECONDS="0",  # studies are driven by the API a test starts and kills
    )


@pytest.fixture(scope="session")
def db(fault_env: dict[str, str]) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(fault_env["FLATLAB_DATABASE_URL"])
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fault-logs")


@pytest.fixture(scope="session")
def api_url(fault_env: dict[str, str], log_dir: Path) -> Iterator[str]:
    with running_api(fault_env, log_dir) as url:
        yield url


@pytest.fixture(scope="session")
def client(api_url: str, fault_env: dict[str, str]) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {create_key(fault_env, 'faults')}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=30) as http:
        yield http


StartWorker = Callable[..., Process]


@pytest.fixture
def start_worker(fault_env: dict[str, str], log_dir: Path) -> Iterator[StartWorker]:
    """`start_worker(name, **env)`: a ready `flatlab worker` (cpu queue, one job at a time)."""
    started: list[Process] = []

    def start(name: str, **env: str) -> Process:
        argv = [sys.executable, "-m", "flatlab.cli", "worker", "--queues", "cpu", "-c", "1"]
        proc = Process(name, argv, {**fault_env, **env}, log_dir)
        started.append(proc)
        proc.wait_for_log(" ready.")
        return proc

    yield start
    for proc in started:
        proc.stop(grace=5)


def kill_group(proc: Process) -> None:
    """SIGKILL the worker and its pool children at once: no checkpoint, no goodbye."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.popen.pid, signal.SIGKILL)
    proc.popen.wait(timeout=10)


def holder(job: Job, workers: list[Process]) -> Process:
    """The worker whose pool child holds `job` (its worker id is host:pid:random)."""
    assert job.worker_id is not None, f"job {job.id} is held by no one ({job.status})"
    pid = int(job.worker_id.split(":")[1])
    pgid = os.getpgid(pid)
    return next(w for w in workers if w.popen.pid == pgid)


def submit(client: httpx.Client, body: dict[str, Any]) -> str:
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def wait_job(
    db: sessionmaker[Session],
    job_id: str,
    until: Callable[[Job], bool] = lambda job: job.status in TERMINAL,
    timeout: float = 90.0,
) -> Job:
    """Poll the job's row (straight from the database) until `until(job)`."""
    deadline = time.monotonic() + timeout
    while True:
        with session_scope(db) as session:
            job = session.get(Job, job_id)
            assert job is not None, f"no job {job_id}"
            if until(job):
                return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id}: still {job.status} at step {job.step}")
        time.sleep(0.1)


def points(db: sessionmaker[Session], job_id: str) -> list[tuple[str, int, float | None]]:
    """Every stored metric point of a job as (name, step, value), duplicates included."""
    stmt = select(MetricPoint.name, MetricPoint.step, MetricPoint.value).where(
        MetricPoint.job_id == job_id
    )
    with session_scope(db) as session:
        return [(name, step, value) for name, step, value in session.execute(stmt)]


def results(summary: dict[str, Any] | None) -> dict[str, Any]:
    """A summary without its wall-clock figures, which no two runs share."""
    return {k: v for k, v in (summary or {}).items() if k not in TIMINGS}


@dataclass(frozen=True)
class Reference:
    """An undisturbed run of `LONG` on the same stack: what every disturbed run must equal."""

    summary: dict[str, Any]
    points: dict[tuple[str, int], float | None]


@pytest.fixture(scope="session")
def reference(
    client: httpx.Client, db: sessionmaker[Session], fault_env: dict[str, str], log_dir: Path
) -> Iterator[Reference]:
    argv = [sys.executable, "-m", "flatlab.cli", "worker", "--queues", "cpu", "-c", "1"]
    worker = Process("worker-reference", argv, fault_env, log_dir)
    try:
        worker.wait_for_log(" ready.")
        job = wait_job(db, submit(client, LONG))
    finally:
        worker.stop(grace=5)
    assert (job.status, job.attempts) == ("succeeded", 1), job.error
    stored = points(db, job.id)
    yield Reference(results(job.summary), {(n, s): v for n, s, v in stored})


@pytest.fixture(scope="session")
def fault_settings(fault_env: dict[str, str]) -> Settings:
    """The stack's settings, as its processes read them from the environment."""
    fields = {k.removeprefix("FLATLAB_").lower(): v for k, v in fault_env.items()}
    return Settings(**{k: v for k, v in fields.items() if k in Settings.model_fields})


def artifact_files(artifacts_dir: Path, job_id: str) -> dict[str, bytes]:
    """Every file in the job's artifact folder (partial `.tmp` files included) → its bytes."""
    folder = artifacts_dir / job_id
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def stored_rows(db: sessionmaker[Session], job_id: str) -> dict[str, Any]:
    """What the database holds for a job: its row's outcome, its artifact rows, its points."""
    with session_scope(db) as session:
        job = session.get(Job, job_id)
        assert job is not None
        row = {
            c: getattr(job, c)
            for c in (
                "status",
                "attempts",
                "infra_failures",
                "handbacks",
                "step",
                "fraction",
                "summary",
                "failure_reason",
                "error",
                "checkpoint_path",
                "finished_at",
            )
        }
        artifacts = session.execute(
            select(Artifact.name, Artifact.path, Artifact.size_bytes, Artifact.step)
            .where(Artifact.job_id == job_id)
            .order_by(Artifact.name)
        ).all()
    return {
        "job": row,
        "artifacts": [tuple(a) for a in artifacts],
        "points": sorted(points(db, job_id)),
    }
