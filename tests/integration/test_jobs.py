"""A job submitted over HTTP runs on a Celery worker and its results come back over HTTP."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.integration.specs import DIGITS, TINY, spec


def submit(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return response.json()


def test_submitted_job_succeeds_and_its_metrics_and_summary_are_queryable(client, wait_for):
    job = submit(client, DIGITS)
    assert job["status"] == "queued"

    done = wait_for(client, job["id"])

    assert done["status"] == "succeeded", done["error"]
    assert done["attempts"] == 1
    assert done["progress"]["fraction"] == 1.0
    summary = done["summary"]
    assert 0.0 <= summary["final_test_acc"] <= 1.0
    assert summary["hessian_trace"] is not None
    block = done["reproducibility"]
    assert block["spec_hash"] == job["spec_hash"]
    assert {"flatlab_version", "torch_version", "device", "seed"} <= set(block)
    metrics = client.get(f"/v1/jobs/{job['id']}/metrics", params={"names": "test_acc"}).json()
    assert _points(metrics, "test_acc"), metrics
    artifacts = client.get(f"/v1/jobs/{job['id']}/artifacts").json()
    assert "checkpoint.pt" in json.dumps(artifacts)


def test_event_stream_delivers_metric_points_while_the_job_runs(client):
    job = submit(client, spec(TINY, **{"training.epochs": 150, "training.log_every_steps": 4}))
    status, metrics_while_running, terminal = None, 0, None
    with client.stream("GET", f"/v1/jobs/{job['id']}/events", timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for kind, data in _sse(response):
            if kind == "status":
                status = data["status"]
                if status in ("succeeded", "failed", "cancelled"):
                    terminal = status
            elif kind == "metric" and status == "running":
                metrics_while_running += 1
    assert terminal == "succeeded"
    assert metrics_while_running > 0


def test_diverging_job_fails_as_diverged_and_keeps_its_metrics(client, wait_for):
    body = spec(TINY, **{"optimizer.base.lr": 100.0, "training.epochs": 50})
    job = submit(client, body)

    done = wait_for(client, job["id"])

    assert done["status"] == "failed"
    assert done["failure_reason"] == "diverged"
    assert "diverged at step" in done["error"]
    assert "optimizer.base.lr" in done["error"]  # says what to change
    metrics = client.get(f"/v1/jobs/{job['id']}/metrics").json()
    assert _points(metrics, "train_loss_step")


def _points(metrics: dict[str, Any], name: str) -> list[Any]:
    return list(metrics["metrics"].get(name, []))


def _sse(response: httpx.Response):
    """(event, data) pairs from a server-sent event stream."""
    kind, data = None, []
    deadline = time.monotonic() + 120
    for line in response.iter_lines():
        if time.monotonic() > deadline:
            raise TimeoutError("event stream did not end")
        if line.startswith("event:"):
            kind = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data.append(line.split(":", 1)[1].strip())
        elif not line and kind is not None:
            yield kind, json.loads("\n".join(data))
            kind, data = None, []
