"""What survives what: a lost worker's job is resumed elsewhere; a stopped worker hands it back."""

from __future__ import annotations

import signal
import sys
import time
from datetime import timedelta

from flatlab.broker import enqueue_job, make_celery
from sam_core.spec import JobSpec
from store.db import session_scope
from store.jobs import create_job
from store.models import Job, utcnow
from tests.integration.conftest import Process
from tests.integration.specs import TINY, spec
from worker.reconciler import reconcile_once

LONG = spec(TINY, **{"training.epochs": 300, "training.log_every_steps": 20})


def test_expired_lease_requeues_the_job_and_it_resumes_from_its_checkpoint(
    client, session_factory, settings, workers
):
    job_id = client.post("/v1/jobs", json=LONG).json()["id"]
    first = _wait_job(session_factory, job_id, lambda j: j.checkpoint_path and j.step >= 40)

    # As if the worker had died: the reconciler runs after its lease ran out.
    later = utcnow() + timedelta(seconds=settings.lease_seconds + 1)
    report = reconcile_once(session_factory, settings, make_celery(settings), now=later)
    assert job_id in report.requeued

    done = _wait_job(session_factory, job_id, lambda j: j.status != "running" and j.attempts == 2)
    done = _wait_job(session_factory, job_id, lambda j: j.status in ("succeeded", "failed"))
    assert done.status == "succeeded", done.error
    assert (done.attempts, done.infra_failures) == (2, 1)
    logs = "".join(w.log() for w in workers)
    assert f"job {job_id}: lease lost" in logs  # the first holder stopped writing
    assert f"job {job_id}: resuming from step" in logs
    assert first.worker_id != done.reproducibility["worker_id"]


def test_worker_stopped_with_sigterm_checkpoints_and_requeues_its_job(
    session_factory, settings, stack_env, log_dir
):
    # Its own worker on the `gpu` queue (the session's workers only take `cpu`); device auto
    # runs on the CPU here.
    argv = [sys.executable, "-m", "flatlab.cli", "worker", "--queues", "gpu", "-c", "1"]
    leaving = Process("worker-leaving", argv, stack_env, log_dir)
    leaving.wait_for_log(" ready.")
    job_id = _create(session_factory, spec(LONG, **{"training.device": "auto"}), queue="gpu")
    enqueue_job(job_id, "gpu", app=make_celery(settings))
    _wait_job(session_factory, job_id, lambda j: j.checkpoint_path and j.step >= 40)

    leaving.popen.send_signal(signal.SIGTERM)  # the parent only, as `docker stop` does
    leaving.popen.wait(timeout=60)
    leaving.stop()

    handed_back = _wait_job(session_factory, job_id, lambda j: j.status != "running")
    assert handed_back.status == "queued"
    assert (handed_back.attempts, handed_back.worker_id) == (1, None)
    assert (handed_back.handbacks, handed_back.infra_failures) == (1, 0)  # spends no attempt
    assert "checkpointing and re-queueing" in leaving.log()

    arriving = Process("worker-arriving", argv, stack_env, log_dir)
    try:
        arriving.wait_for_log(" ready.")
        done = _wait_job(session_factory, job_id, lambda j: j.status in ("succeeded", "failed"))
    finally:
        arriving.stop()
    assert done.status == "succeeded", done.error
    assert (done.attempts, done.infra_failures, done.handbacks) == (2, 0, 1)
    assert f"job {job_id}: resuming from step" in arriving.log()


def _create(session_factory, body, queue: str) -> str:
    with session_scope(session_factory) as session:
        job = create_job(
            session=session,
            team_id="recovery",
            spec=JobSpec.model_validate(body),
            max_attempts=3,
            auto_queue=queue,
        )
        return job.id


def _wait_job(session_factory, job_id: str, until, timeout: float = 120.0) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        with session_scope(session_factory) as session:
            job = session.get(Job, job_id)
            if until(job):
                return job
        assert time.monotonic() < deadline, f"job {job_id}: {job.status} at step {job.step}"
        time.sleep(0.2)
