"""A host whose clock is off the database's neither steals jobs nor loses them.

Issue 12: a worker whose clock ran 30 s ahead re-queued healthy jobs at its
first reconcile, and one running behind stamped leases that were already out.
Leases are stamped and judged by the database's clock now. The skewed host is
faked in this process: every host-clock reading the store and the worker make
(`utcnow` where they import it) is shifted, while a real worker runs beside it.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

import store.jobs
import store.leases
import store.metrics
import worker.registry
from flatlab.broker import make_celery
from sam_core.spec import JobSpec
from store.db import session_scope
from store.jobs import create_job
from store.models import utcnow
from store.workers import remove_worker
from tests.faults.conftest import LONG, submit, wait_job
from tests.integration.specs import spec
from worker.reconciler import reconcile_once
from worker.registry import WorkerRegistration
from worker.runner import run_job

pytestmark = pytest.mark.slow


def _skew(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    def shifted():
        return utcnow() + timedelta(seconds=seconds)

    for module in (store.leases, store.jobs, store.metrics, worker.registry):
        monkeypatch.setattr(module, "utcnow", shifted)


def test_a_reconciler_whose_clock_runs_ahead_steals_no_running_job(
    client, db, fault_settings, start_worker, monkeypatch
):
    start_worker("worker-true-clock")
    job_id = submit(client, LONG)
    running = wait_job(db, job_id, lambda j: j.status == "running")
    _skew(monkeypatch, +30)  # 10 leases ahead
    app = make_celery(fault_settings)
    for _ in range(10):  # reconcile passes while the job runs on healthy heartbeats
        report = reconcile_once(db, fault_settings, app)
        assert job_id not in report.requeued + report.failed
        time.sleep(0.2)
    done = wait_job(db, job_id)
    assert (done.status, done.attempts, done.infra_failures) == ("succeeded", 1, 0)
    assert done.worker_id == running.worker_id or done.worker_id is None


def test_a_worker_whose_clock_runs_behind_keeps_its_job(
    db, fault_settings, start_worker, monkeypatch
):
    start_worker("worker-true-clock")  # its reconciler judges every lease, every second
    with session_scope(db) as session:
        job_id = create_job(
            session=session,
            team_id="faults",
            spec=JobSpec.model_validate(spec(LONG, name="faults-behind")),
            max_attempts=3,
        ).id
    _skew(monkeypatch, -30)  # its leases would be 27 s out on arrival by its own clock
    assert run_job(job_id, fault_settings) == "succeeded"
    done = wait_job(db, job_id)
    assert (done.attempts, done.infra_failures) == (1, 0)


def test_readyz_names_a_worker_whose_clock_is_off(client, db, fault_settings, monkeypatch):
    _skew(monkeypatch, +30)
    registration = WorkerRegistration(
        db, worker_id="faults-skewed@host", queues=["cpu"], interval=60, skew_bound=2.0
    )
    registration.register()
    try:
        skew = client.get("/readyz").json()["clock_skew"]
        assert 29 < skew["faults-skewed@host"] < 31
        registration.beat()  # measured again at every beat
        assert 29 < client.get("/readyz").json()["clock_skew"]["faults-skewed@host"] < 31
    finally:
        with session_scope(db) as session:
            remove_worker(session=session, worker_id="faults-skewed@host")
    assert "faults-skewed@host" not in client.get("/readyz").json()["clock_skew"]
