"""Cancelling: a running job stops and ends `cancelled`; a cancelled queued job never starts."""

from __future__ import annotations

import time

from flatlab.broker import enqueue_job, make_celery
from tests.integration.specs import TINY, spec


def test_cancel_stops_a_running_job(client, wait_for):
    long_run = spec(TINY, **{"training.epochs": 5000, "training.log_every_steps": 5})
    job = client.post("/v1/jobs", json=long_run).json()
    wait_for(client, job["id"], until=lambda j: j["status"] == "running" and j["progress"]["step"])

    response = client.post(f"/v1/jobs/{job['id']}/cancel")
    assert response.status_code in (200, 202), response.text
    done = wait_for(client, job["id"], timeout=30)

    assert done["status"] == "cancelled"
    assert done["failure_reason"] == "cancelled"
    assert done["progress"]["step"] < done["progress"]["total_steps"]
    names = [a["name"] for a in client.get(f"/v1/jobs/{job['id']}/artifacts").json()["items"]]
    assert "checkpoint.pt" in names  # stopped cleanly: a last checkpoint was taken


def test_cancelled_queued_job_never_starts(client, settings, workers):
    # `cuda` routes the job to the gpu queue, which no test worker consumes: it stays queued.
    job = client.post("/v1/jobs", json=spec(TINY, **{"training.device": "cuda"})).json()
    assert job["queue"] == "gpu"
    cancelled = client.post(f"/v1/jobs/{job['id']}/cancel").json()
    assert cancelled["status"] == "cancelled"

    # A late or duplicate delivery of its id to a live worker must not run it.
    enqueue_job(job["id"], "cpu", app=make_celery(settings))
    _wait_for_log_line(workers, f"job {job['id']}: not queued")

    after = client.get(f"/v1/jobs/{job['id']}").json()
    assert after["status"] == "cancelled"
    assert after["attempts"] == 0
    assert after["timings"]["started_at"] is None
    assert client.get(f"/v1/jobs/{job['id']}/metrics").json()["metrics"] == {}


def _wait_for_log_line(workers, text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in w.log() for w in workers):
        assert time.monotonic() < deadline, f"no worker logged {text!r}"
        time.sleep(0.2)
