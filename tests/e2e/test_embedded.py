"""The embedded default end to end: `flatlab up --detach` in an empty folder, a job, `flatlab down`.

No PostgreSQL, no Redis: SQLite and the filesystem broker under `./.flatlab/`,
the API and a real Celery worker started by the CLI, the same code path as a
team deployment.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.integration.specs import TINY


def flatlab(*args: str, cwd: Path, env: dict[str, str], timeout: float = 180):
    return subprocess.run(
        [sys.executable, "-m", "flatlab.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_embedded_stack_runs_a_job_from_up_to_down(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLATLAB_")}
    env.update(COLUMNS="200", PYTHONUNBUFFERED="1")
    port = _free_port()
    up = flatlab("up", "--detach", "--port", str(port), cwd=tmp_path, env=env)
    run_dir = tmp_path / ".flatlab" / "run"
    pids = [int(p.read_text()) for p in run_dir.glob("*.pid")]
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"http://127.0.0.1:{port}" in up.stdout
        assert "auth      off" in up.stdout
        assert len(pids) == 2
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            created = client.post("/v1/jobs", json=TINY)
            assert created.status_code == 202, created.text
            job = _wait_terminal(client, created.json()["id"])
            assert job["status"] == "succeeded", job["error"]
            metrics = client.get(f"/v1/jobs/{job['id']}/metrics").json()["metrics"]
            assert metrics["test_loss"]
        assert (tmp_path / ".flatlab" / "flatlab.db").exists()
    finally:
        down = flatlab("down", cwd=tmp_path, env=env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not list(run_dir.glob("*.pid"))
    assert not [pid for pid in pids if _alive(pid)]


def _wait_terminal(client: httpx.Client, job_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}"
        time.sleep(0.3)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_flatlab_down_hands_a_running_job_back_queued_after_one_attempt(tmp_path: Path):
    # `flatlab down` mid-job: the job checkpoints and goes back to `queued`; the
    # worker that is shutting down must not start it again (which would leave it
    # `running` with an attempt spent when the worker exits).
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLATLAB_")}
    env.update(PYTHONUNBUFFERED="1")
    port = _free_port()
    up = flatlab("up", "--detach", "--port", str(port), cwd=tmp_path, env=env)
    long_job = {**TINY, "training": {**TINY["training"], "epochs": 200}}
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            job_id = client.post("/v1/jobs", json=long_job).raise_for_status().json()["id"]
            deadline = time.monotonic() + 120
            while True:
                job = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
                if job["status"] == "running" and job["progress"]["step"] >= 20:
                    break
                assert time.monotonic() < deadline, f"job never got going: {job}"
                time.sleep(0.2)
    finally:
        down = flatlab("down", cwd=tmp_path, env=env)
    assert down.returncode == 0, down.stdout + down.stderr
    db = tmp_path / ".flatlab" / "flatlab.db"
    with sqlite3.connect(db) as conn:
        status, attempts, worker = conn.execute(
            "SELECT status, attempts, worker_id FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
    assert (status, attempts, worker) == ("queued", 1, None)
