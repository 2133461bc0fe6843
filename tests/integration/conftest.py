"""The real stack for integration tests: PostgreSQL, Redis, the API and two Celery workers.

Once per session: a fresh PostgreSQL database `flatlab_it_<random>` with the
migrations applied (dropped at the end), a private `redis-server` on a free
port for the broker (`tests/faults/servers.py`; the shared Redis is never
touched), the API under uvicorn on a free port and
two `flatlab worker` processes (prefork, one job at a time, a fresh child per
job), each a subprocess with its own process group so teardown kills every
one of them. Workers consume the `cpu` queue only, so a job sent to `gpu`
stays queued for as long as a test needs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

import migrations
from flatlab.settings import Settings
from store.db import make_engine, make_session_factory
from tests.faults.servers import PrivateRedis, free_port
from tests.pg import temporary_database

__all__ = ["TERMINAL", "Process", "create_key", "free_port", "running_api", "stack_environment"]

TERMINAL = ("succeeded", "failed", "cancelled", "pruned")


class Process:
    """A child process in its own process group, logging to a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.log_path = name, log_dir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: no {text!r} in its log:\n{self.log()[-4000:]}")
            time.sleep(0.2)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the group, then SIGKILL whatever is left of it."""
        pgid = self.popen.pid
        _killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=grace)
        _killpg(pgid, signal.SIGKILL)
        self.popen.wait(timeout=10)


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with temporary_database("flatlab_it") as url:
        migrations.upgrade(url)
        yield url


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    server = PrivateRedis()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture(scope="session")
def stack_env(
    database_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    home = tmp_path_factory.mktemp("flatlab-home")
    return stack_environment(home, database_url, broker_url, LEASE_SECONDS="20")


def stack_environment(home: Path, database_url: str, broker_url: str, **flatlab: str) -> dict:
    """This process's environment for a stack's processes: our FLATLAB_* settings only.

    `flatlab` overrides or adds settings by name without the prefix
    (`LEASE_SECONDS="3"`).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLATLAB_")}
    settings = {
        "HOME": str(home),
        "DATABASE_URL": database_url,
        "BROKER_URL": broker_url,
        "AUTH_REQUIRED": "true",
        "HEARTBEAT_SECONDS": "0.5",
        "LEASE_SECONDS": "20",
        "RECONCILE_SECONDS": "2",
        "WORKER_STALE_SECONDS": "5",  # a killed worker stops counting soon
        "STUDY_POLL_SECONDS": "0.3",  # the study driver feeds the pruner promptly
        "METRIC_FLUSH_SECONDS": "0.1",  # …and hears of a trial's evaluations promptly
        **flatlab,
    }
    env.update({f"FLATLAB_{k}": v for k, v in settings.items()})
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


@pytest.fixture(scope="session")
def settings(stack_env: dict[str, str]) -> Settings:
    fields = {k.removeprefix("FLATLAB_").lower(): v for k, v in stack_env.items()}
    return Settings(**{k: v for k, v in fields.items() if k in Settings.model_fields})


@pytest.fixture(scope="session")
def session_factory(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def workers(stack_env: dict[str, str], log_dir: Path) -> Iterator[list[Process]]:
    argv = [sys.executable, "-m", "flatlab.cli", "worker", "--queues", "cpu", "-c", "1"]
    procs = [Process(f"worker{i}", argv, stack_env, log_dir) for i in range(2)]
    try:
        for proc in procs:
            proc.wait_for_log(" ready.")
            # Its row, so /readyz counts it: written by a thread that races the pool
            # child's warm-up (torch imports) for the CPU.
            proc.wait_for_log(" registered: queues ")
        yield procs
    finally:
        for proc in procs:
            proc.stop()


@pytest.fixture(scope="session")
def api_url(stack_env: dict[str, str], log_dir: Path) -> Iterator[str]:
    with running_api(stack_env, log_dir) as url:
        yield url


@contextmanager
def running_api(env: dict[str, str], log_dir: Path) -> Iterator[str]:
    """The API under uvicorn on a free port, ready; stopped on exit."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "api.app:app", "--port", str(port)]
    proc = Process("api", argv, env, log_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        yield url
    finally:
        proc.stop()


def _wait_ready(url: str, proc: Process, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"the API exited:\n{proc.log()[-4000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the API was not ready:\n{proc.log()[-4000:]}")


@pytest.fixture(scope="session")
def api_key(stack_env: dict[str, str]) -> str:
    return create_key(stack_env, "integration")


def create_key(env: dict[str, str], team: str) -> str:
    """A key made the way an operator makes one: `flatlab keys create`, last line."""
    done = subprocess.run(
        [sys.executable, "-m", "flatlab.cli", "keys", "create", "--team", team],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def client(api_url: str, api_key: str, workers: list[Process]) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=30) as http:
        yield http


@pytest.fixture(scope="session")
def wait_for() -> Callable[..., dict[str, Any]]:
    def wait(
        client: httpx.Client,
        job_id: str,
        until: Callable[[dict[str, Any]], bool] = lambda job: job["status"] in TERMINAL,
        timeout: float = 90.0,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
            if until(job):
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} never got there; last seen: {job}")
            time.sleep(0.2)

    return wait
