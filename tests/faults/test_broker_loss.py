"""The broker forgets every message (Redis flushed): each queued job still runs, exactly once."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.faults.conftest import submit, wait_job
from tests.integration.specs import TINY, spec


def test_jobs_queued_when_redis_is_flushed_all_run_exactly_once(client, db, broker, start_worker):
    bodies = [spec(TINY, name=f"faults-flush-{s}", **{"training.seed": s}) for s in range(4)]
    job_ids = [submit(client, body) for body in bodies]  # no worker is up: they wait in Redis
    _wait_until(lambda: broker.client.llen("cpu") == len(job_ids))  # sent after the response

    broker.flushall()
    assert broker.client.dbsize() == 0
    worker = start_worker("worker-after-flush")  # its reconciler re-sends what Redis lost

    done = [wait_job(db, job_id, timeout=120) for job_id in job_ids]
    assert [(j.status, j.attempts, j.infra_failures) for j in done] == [("succeeded", 1, 0)] * 4
    log = worker.log()
    for job_id in job_ids:
        assert log.count(f"job {job_id}: attempt") == 1  # claimed once
        assert f"job {job_id}: not queued" not in log  # and never delivered twice


def _wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)
