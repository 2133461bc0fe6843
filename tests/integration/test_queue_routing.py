"""Which queues have live workers, seen through the real API with real `flatlab worker`s.

The session's workers consume `cpu` only. A job for `gpu` is accepted and says
why it waits; a worker started as the README's team deployment starts one
(`flatlab worker --gpu 0`) takes a default job, and a normal stop removes it
from `/readyz` at once and logs no error.
"""

from __future__ import annotations

import sys
from typing import Any

import httpx

from tests.integration.conftest import Process
from tests.integration.specs import TINY, spec


def _submit(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return response.json()


def _queues(client: httpx.Client) -> dict[str, Any]:
    return client.get("/readyz").raise_for_status().json()["queues"]


def test_a_gpu_job_on_a_cpu_only_stack_is_kept_and_says_why_it_waits(client, wait_for):
    queues = _queues(client)
    assert len(queues["cpu"]["workers"]) == 2 and queues["cpu"]["waiting_reason"] is None
    assert queues["gpu"]["workers"] == []

    job = _submit(client, spec(TINY, **{"training.device": "cuda"}))
    assert job["queue"] == "gpu" and "no live worker consumes queue 'gpu'" in job["waiting_reason"]
    read = client.get(f"/v1/jobs/{job['id']}").json()
    assert read["status"] == "queued" and read["waiting_reason"] == job["waiting_reason"]
    assert _queues(client)["gpu"]["queued_jobs"] >= 1

    ordinary = _submit(client, TINY)
    assert ordinary["waiting_reason"] is None
    assert wait_for(client, ordinary["id"], timeout=300)["status"] == "succeeded"
    client.post(f"/v1/jobs/{job['id']}/cancel").raise_for_status()


def test_the_readme_team_deployment_runs_a_default_job_and_stops_cleanly(
    client, wait_for, stack_env, log_dir
):
    argv = [sys.executable, "-m", "flatlab.cli", "worker", "--gpu", "0"]
    gpu = Process("worker-gpu0", argv, stack_env, log_dir)
    try:
        gpu.wait_for_log("registered: queues ['gpu']")
        default = spec(TINY, **{"training.device": "auto"})
        job = _submit(client, default)
        assert (job["queue"], job["waiting_reason"]) == ("gpu", None)
        done = wait_for(client, job["id"], timeout=300)
        assert done["status"] == "succeeded", done["error"]
        assert f"job {job['id']}: attempt 1" in gpu.log(), "the gpu worker ran it"
        assert _queues(client)["gpu"]["workers"] != []
    finally:
        gpu.stop()  # SIGTERM to the group, as `flatlab down` sends it

    assert "unregistered" in gpu.log()
    errors = [line for line in gpu.log().splitlines() if "ERROR" in line]
    assert errors == [], "a normal stop logs no error"
    assert _queues(client)["gpu"]["workers"] == []
    after = _submit(client, default)
    assert after["queue"] == "cpu" and after["waiting_reason"] is None
    assert wait_for(client, after["id"], timeout=300)["status"] == "succeeded"


def test_a_missing_data_file_is_refused_at_submission(client):
    body = spec(TINY, data={"name": "npz", "path": "not-uploaded.npz"})
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == "data.path"
