"""Each job runs in a process of its own that ends with it, so its CUDA memory goes back.

Through the real API, with a worker of the test's own (`flatlab worker`, one job
at a time, consuming `gpu`, so the session's `cpu` workers take none of these
jobs; a `device: auto` job runs on the CPU here). Its pool child warms up
before a job arrives, yet a child never runs a second job: two jobs in a row
get two processes, the first is gone once its job ended, and the worker's
parent, which forks them, never loaded torch (so it cannot have touched CUDA).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.integration.conftest import Process
from tests.integration.specs import TINY, spec


def test_two_jobs_in_a_row_run_in_two_processes_and_the_first_is_gone(
    client, wait_for, stack_env, log_dir
):
    argv = [sys.executable, "-m", "flatlab.cli", "worker", "--queues", "gpu", "-c", "1"]
    own = Process("worker-fresh", argv, stack_env, log_dir)
    try:
        own.wait_for_log("registered: queues ['gpu']")
        body = spec(TINY, **{"training.device": "auto"})
        first = _run_on(own, client, wait_for, body)
        _wait_gone(first["pid"])
        second = _run_on(own, client, wait_for, body)
        parent_maps = Path(f"/proc/{own.popen.pid}/maps").read_text()
    finally:
        own.stop()

    assert second["pid"] != first["pid"]
    assert own.popen.pid not in (first["pid"], second["pid"])
    assert "libtorch" not in parent_maps, "the worker's parent loaded torch"


def _run_on(
    worker: Process, client: httpx.Client, wait_for: Any, body: dict[str, Any]
) -> dict[str, Any]:
    """Submit, wait for the end; the job's reproducibility block, checked to be `worker`'s."""
    job = client.post("/v1/jobs", json=body)
    assert job.status_code == 202, job.text
    assert job.json()["queue"] == "gpu"
    done = wait_for(client, job.json()["id"], timeout=300)
    assert done["status"] == "succeeded", done["error"]
    block = done["reproducibility"]
    assert f"job {done['id']}: attempt 1 on {block['worker_id']}" in worker.log()
    return dict(block)


def _wait_gone(pid: int, timeout: float = 60.0) -> None:
    """Until no process has `pid` (a zombie still counts as there); AssertionError past timeout."""
    deadline = time.monotonic() + timeout
    while _alive(pid):
        assert time.monotonic() < deadline, f"process {pid} of a finished job is still there"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
