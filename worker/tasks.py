"""Celery tasks: thin adapters that take a job id and hand it to the runner.

The runner (and torch) is imported inside the task, in the pool child, so the
worker's parent process never imports torch. Results are ignored: the
database is the record of what happened.
"""

from __future__ import annotations

import logging

from flatlab.broker import RUN_ENSEMBLE_TASK, RUN_JOB_TASK
from flatlab.settings import get_settings
from worker.app import app, shutting_down

log = logging.getLogger(__name__)


@app.task(name=RUN_JOB_TASK, ignore_result=True, acks_late=True)
def run_job(job_id: str) -> None:
    if _not_starting(f"job {job_id}"):
        return
    from worker.runner import run_job as run

    if _not_starting(f"job {job_id}"):  # SIGTERM while importing torch
        return
    run(job_id, get_settings())


# Enqueued with a list of job ids that `can_ensemble` accepts (a benchmark's seeds).
@app.task(name=RUN_ENSEMBLE_TASK, ignore_result=True, acks_late=True)
def run_ensemble(job_ids: list[str]) -> None:
    if _not_starting(f"jobs {job_ids}"):
        return
    from worker.ensemble_runner import run_ensemble as run

    if _not_starting(f"jobs {job_ids}"):
        return
    run(job_ids, get_settings())


def _not_starting(what: str) -> bool:
    """True (and says so) when this worker is stopping: the job stays queued for another."""
    if shutting_down():
        log.info("%s: not started, this worker is shutting down", what)
        return True
    return False
