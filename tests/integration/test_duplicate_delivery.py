"""At-least-once delivery never means twice run: the claim lets exactly one worker have a job."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select

from flatlab.broker import enqueue_job, make_celery
from sam_core.spec import JobSpec
from store.db import session_scope
from store.jobs import create_job
from store.leases import claim_job
from store.models import Job, MetricPoint
from tests.integration.specs import TINY, spec


def _create(session_factory, body) -> str:
    with session_scope(session_factory) as session:
        job = create_job(
            session=session,
            team_id="race",
            spec=JobSpec.model_validate(body),
            max_attempts=3,
        )
        return job.id


def test_job_enqueued_twice_to_two_workers_runs_once(session_factory, settings, workers):
    job_id = _create(session_factory, spec(TINY, **{"training.epochs": 20}))
    app = make_celery(settings)
    enqueue_job(job_id, "cpu", app=app)
    enqueue_job(job_id, "cpu", app=app)

    job = _wait_terminal(session_factory, job_id)

    assert job.status == "succeeded"
    assert job.attempts == 1
    with session_scope(session_factory) as session:
        total = session.scalar(
            select(func.count()).select_from(MetricPoint).where(MetricPoint.job_id == job_id)
        )
        distinct = session.scalar(
            select(func.count()).select_from(
                select(MetricPoint.name, MetricPoint.step)
                .where(MetricPoint.job_id == job_id)
                .distinct()
                .subquery()
            )
        )
    assert total == distinct > 0
    logs = "".join(w.log() for w in workers)
    assert logs.count(f"job {job_id}: attempt 1") == 1
    _wait_until(lambda: f"job {job_id}: not queued" in "".join(w.log() for w in workers))


def test_concurrent_claims_let_exactly_one_worker_win(session_factory):
    job_id = _create(session_factory, TINY)
    contenders = 8
    barrier = threading.Barrier(contenders)
    winners: list[str] = []

    def claim(worker_id: str) -> None:
        barrier.wait()
        with session_scope(session_factory) as session:
            job = claim_job(session=session, job_id=job_id, worker_id=worker_id, lease_seconds=30)
            if job is not None:
                winners.append(worker_id)

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(winners) == 1
    with session_scope(session_factory) as session:
        job = session.get(Job, job_id)
        assert (job.status, job.attempts, job.worker_id) == ("running", 1, winners[0])


def _wait_terminal(session_factory, job_id: str, timeout: float = 90.0) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        with session_scope(session_factory) as session:
            job = session.get(Job, job_id)
            if job.status in ("succeeded", "failed", "cancelled"):
                return job
        assert time.monotonic() < deadline, f"job {job_id} still {job.status}"
        time.sleep(0.2)


def _wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.2)
