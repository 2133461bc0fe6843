"""PostgreSQL goes away mid-run and comes back: the run rides it out; the API says 503 meanwhile."""

from __future__ import annotations

import time
from collections import Counter

import httpx

from tests.faults.conftest import LONG, points, results, submit, wait_job
from tests.integration.specs import TINY

OUTAGE_SECONDS = 4.0  # longer than the first few retries of a write, shorter than the lease


def test_run_survives_a_database_restart_with_no_point_lost_or_doubled(
    client, db, postgres, start_worker, reference
):
    # A lease longer than the outage: the same attempt must carry on once the database is back.
    worker = start_worker("worker-db-restart", FLATLAB_LEASE_SECONDS="30")
    job_id = submit(client, LONG)
    wait_job(db, job_id, lambda j: j.checkpoint_path is not None and j.step >= 40)

    postgres.stop()
    down_since = time.monotonic()
    while_down = _api_while_database_down(client, job_id)
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_since)))
    postgres.start()

    for name, response in while_down.items():
        _assert_unavailable(name, response)
    assert "database" in while_down["readyz"].json()["detail"]
    assert while_down["readyz"].json()["checks"]["broker"] == "ok"

    done = wait_job(db, job_id)
    assert done.status == "succeeded", done.error
    assert (done.attempts, done.infra_failures) == (1, 0)  # rode it out, not re-run
    assert "retrying in" in worker.log()  # the outage did reach the worker's writes
    stored = points(db, job_id)
    keys = Counter((name, step) for name, step, _ in stored)
    assert max(keys.values()) == 1
    assert set(keys) == set(reference.points)
    assert {(n, s): v for n, s, v in stored} == reference.points
    assert results(done.summary) == reference.summary
    assert client.get("/readyz").status_code == 200


def _api_while_database_down(client: httpx.Client, job_id: str) -> dict[str, httpx.Response]:
    """Each request bounded by a client timeout: an answer, not a hang."""
    timeout = httpx.Timeout(10.0)
    return {
        "get job": client.get(f"/v1/jobs/{job_id}", timeout=timeout),
        "submit": client.post("/v1/jobs", json=TINY, timeout=timeout),
        "readyz": client.get("/readyz", timeout=timeout),
    }


def _assert_unavailable(name: str, response: httpx.Response) -> None:
    assert response.status_code == 503, f"{name}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == "application/problem+json", name
    body = response.json()
    assert body["status"] == 503 and body["title"] == "Service unavailable", (name, body)
    assert "Traceback" not in response.text, name
