"""The runner: claim a job, train it with sam_core, and turn what happens into rows.

`run_job(job_id, settings)` is everything a worker does for one job, with no
broker involved, so it is tested directly. The claim is one conditional
UPDATE: a duplicate delivery, a cancelled job or a job another worker holds
ends here without running. A retried attempt resumes from the job's last
checkpoint. A heartbeat thread keeps the lease and hears cancel requests;
the trainer polls the stop signal every step.

An attempt that loses its job (its writes are refused by the fence,
`store.leases.LeaseLost`) ends at once and writes nothing more; a file the
machine cannot write (`worker.recorder.StorageFailure`) is an infrastructure
failure: the job is retried from its last good checkpoint.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import torch
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from flatlab.settings import Settings
from sam_core.spec import JobSpec
from sam_core.training import train
from sam_core.training.checkpoint import check_resume_state
from store.db import make_engine, make_session_factory
from store.leases import (
    LeaseLost,
    cancel_if_requested,
    claim_job,
    finish_job,
    idled_out,
    release_job,
    retry_job,
    touch_enqueued,
)
from store.models import Job
from worker.data_parallel import train_ranks
from worker.heartbeat import Heartbeat, StopSignal, job_timeout, sigterm_stops
from worker.outcomes import Outcome, from_exception, from_finished
from worker.recorder import Recorder
from worker.registry import visible_devices
from worker.reproducibility import reproducibility_block
from worker.transactions import in_transaction

log = logging.getLogger(__name__)


def make_worker_id() -> str:
    """Unique per attempt: host, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def run_job(job_id: str, settings: Settings, *, worker_id: str | None = None) -> str | None:
    """Run one job to its end; return its final status, or None when it was not ours to run."""
    worker_id = worker_id or make_worker_id()
    engine = make_engine(settings.db_url, idle_in_transaction_s=settings.lease_seconds)
    factory = make_session_factory(engine)
    try:
        job = in_transaction(
            factory, lambda s: _claim(s, job_id, worker_id, settings), what="claiming the job"
        )
        if job is None:
            return None
        log.info("job %s: attempt %d on %s", job_id, job.attempts, worker_id)
        try:
            spec = JobSpec.model_validate(job.spec)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            return _end(factory, job, worker_id, settings, from_exception(exc, 0, None))
        return _JobRun(job, spec, factory, settings, worker_id).execute()
    finally:
        engine.dispose()


def _claim(session: Session, job_id: str, worker_id: str, settings: Settings) -> Job | None:
    if not _fits(session, job_id):
        _send_later(session, job_id, settings)  # stays queued for a wider worker
        return None
    cap = settings.max_running_jobs_per_team
    job = claim_job(
        session=session,
        job_id=job_id,
        worker_id=worker_id,
        lease_seconds=settings.lease_seconds,
        team_cap=cap if cap > 0 else None,
    )
    if job is None:
        if cancel_if_requested(session=session, job_id=job_id):
            log.info("job %s: cancelled before it started", job_id)
        elif session.scalar(select(Job.status).where(Job.id == job_id)) == "queued":
            log.info("job %s: its team runs %d jobs already; trying again later", job_id, cap)
            _send_later(session, job_id, settings)
        else:
            log.info("job %s: not queued (already taken, finished or unknown); skipping", job_id)
    return job


class _JobRun:
    """One attempt at one claimed job."""

    def __init__(
        self,
        job: Job,
        spec: JobSpec,
        factory: sessionmaker[Session],
        settings: Settings,
        worker_id: str,
    ) -> None:
        self.job, self.spec, self.factory = job, spec, factory
        self.settings, self.worker_id = settings, worker_id

    def execute(self) -> str | None:
        started = time.monotonic()
        stop = StopSignal(
            job_timeout(self.spec.limits.timeout_s, self.settings.job_timeout_seconds)
        )
        recorder = self._recorder()
        heartbeat = Heartbeat(
            self.factory,
            job_id=self.job.id,
            worker_id=self.worker_id,
            interval=self.settings.heartbeat_seconds,
            lease_seconds=self.settings.lease_seconds,
            stop=stop,
        )
        heartbeat.start()
        try:
            outcome = self._train(recorder, stop)
        finally:
            heartbeat.close()
        if outcome.summary is not None:
            outcome.summary.setdefault("wall_seconds", time.monotonic() - started)
        return _end(self.factory, self.job, self.worker_id, self.settings, outcome)

    def _train(self, recorder: Recorder, stop: StopSignal) -> Outcome:
        with sigterm_stops(stop):
            try:
                if self.spec.resources.world_size > 1:
                    finished = train_ranks(
                        self.spec, self._recorder_args(), self.settings, stop, self._resume_path()
                    )
                else:
                    finished = train(
                        self.spec,
                        recorder,
                        stop,
                        resume=self._resume_state(),
                        data_dir=str(self.settings.datasets_dir),
                    )
                recorder.flush()
            except SQLAlchemyError as exc:
                if idled_out(exc):  # frozen past its lease while holding the row: lost
                    log.warning("job %s: %s; this attempt stops, writing nothing", self.job.id, exc)
                    return Outcome("lost")
                raise  # the database is gone: the lease expires and the job is retried
            except Exception as exc:
                return failed(exc, recorder, self.job.id, self.spec)
        return from_finished(finished, stop.reason, self.spec, recorder.storage_error)

    def _recorder(self) -> Recorder:
        return Recorder(self.factory, **self._recorder_args())

    def _recorder_args(self) -> dict[str, Any]:
        return {
            "job_id": self.job.id,
            "team_id": self.job.team_id,
            "worker_id": self.worker_id,
            "artifacts_dir": self.settings.artifacts_dir,
            "reproducibility": reproducibility_block(self.spec, self.job, self.worker_id),
            "flush_seconds": self.settings.metric_flush_seconds,
        }

    def _resume_path(self) -> str | None:
        """The checkpoint file to resume the ranks from (checked here), or None."""
        if self._resume_state() is None:
            return None
        path = Path(str(self.job.checkpoint_path))
        return str(path if path.is_absolute() else self.settings.artifacts_dir / path)

    def _resume_state(self) -> dict[str, Any] | None:
        """The last checkpoint of an earlier attempt, or None to start from scratch."""
        if not self.job.checkpoint_path:
            return None
        path = Path(self.job.checkpoint_path)
        path = path if path.is_absolute() else self.settings.artifacts_dir / path
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            check_resume_state(state, self.spec.hash())
        except (OSError, ValueError, RuntimeError) as exc:
            log.warning("job %s: cannot resume from %s (%s); starting over", self.job.id, path, exc)
            return None
        log.info("job %s: resuming from step %s", self.job.id, state["counters"]["step"])
        return state


def failed(exc: Exception, recorder: Recorder, job_id: str, spec: JobSpec) -> Outcome:
    """The outcome of a run that raised `exc`; its buffered points are written if still ours."""
    outcome = from_exception(exc, recorder.step, spec)
    if outcome.status == "lost":
        log.warning("%s; this attempt stops and writes nothing more", exc)
        return outcome
    log.exception("job %s failed at step %d", job_id, recorder.step)
    try:
        recorder.flush()
    except LeaseLost as lost:
        log.warning("%s; this attempt stops and writes nothing more", lost)
        return Outcome("lost")
    return outcome


def _fits(session: Session, job_id: str) -> bool:
    """Whether this worker holds the GPUs a queued `gpu` job's ranks need.

    A worker pinned to GPUs (`--gpu N`, `--gpus 0,1,…`) holds as many as it lists;
    one without `CUDA_VISIBLE_DEVICES` is not judged here (the ranks check).
    """
    row = session.execute(select(Job.queue, Job.spec, Job.status).where(Job.id == job_id)).first()
    if row is None or row.status != "queued" or row.queue != "gpu":
        return True
    resources = row.spec.get("resources") if isinstance(row.spec, dict) else None
    wants = int(resources.get("devices", 1)) if isinstance(resources, dict) else 1
    held = [d for d in visible_devices() if d.startswith("cuda:")]
    if held and wants > len(held):
        log.info(
            "job %s: needs %d GPUs, this worker holds %d; sent again later",
            job_id,
            wants,
            len(held),
        )
        return False
    return True


def _end(
    factory: sessionmaker[Session], job: Job, worker_id: str, settings: Settings, outcome: Outcome
) -> str | None:
    """Write how the attempt ended, if this worker still holds the job; return the status."""
    job_id = job.id
    if outcome.status == "lost":
        return None
    if outcome.status == "requeue":
        released = in_transaction(
            factory,
            lambda s: release_job(session=s, job_id=job_id, worker_id=worker_id),
            what="re-queueing the job",
        )
        if released:
            _enqueue_again(job_id, job.queue, settings)
        return "queued" if released else None
    if outcome.status == "retry":
        status = in_transaction(
            factory,
            lambda s: retry_job(
                session=s,
                job_id=job_id,
                worker_id=worker_id,
                error=outcome.error or "infrastructure failure",
                summary=outcome.summary,
            ),
            what="recording an infrastructure failure",
        )
        log.warning("job %s: infrastructure failure (%s): %s", job_id, status, outcome.error)
        if status == "queued":
            _enqueue_again(job_id, job.queue, settings)
        return status
    done = in_transaction(
        factory,
        lambda s: finish_job(
            session=s,
            job_id=job_id,
            worker_id=worker_id,
            status=outcome.status,
            summary=outcome.summary,
            failure_reason=outcome.failure_reason,
            error=outcome.error,
        ),
        what="recording the result",
    )
    log.info("job %s: %s %s", job_id, outcome.status, outcome.error or "")
    return outcome.status if done else None


def _send_later(session: Session, job_id: str, settings: Settings) -> None:
    """Send a job waiting for its team's cap again in `cap_retry_seconds`; it stays queued.

    Marked as sent, so the reconciler leaves it alone meanwhile; if the send
    fails, the reconciler sends it once the mark is old.
    """
    from flatlab.broker import RUN_JOB_TASK, make_celery

    queue = session.scalar(select(Job.queue).where(Job.id == job_id)) or "cpu"
    touch_enqueued(session=session, job_ids=[job_id])
    try:
        make_celery(settings).send_task(
            RUN_JOB_TASK, args=[job_id], queue=queue, countdown=settings.cap_retry_seconds
        )
    except Exception as exc:
        log.warning("job %s: re-send failed (%s); the reconciler will send it", job_id, exc)


def _enqueue_again(job_id: str, queue: str, settings: Settings) -> None:
    """Send a released job back to the broker now; if that fails, the reconciler will."""
    from flatlab.broker import enqueue_job, make_celery

    try:
        enqueue_job(job_id, queue, app=make_celery(settings))
    except Exception as exc:
        log.warning("job %s: re-enqueue failed (%s); the reconciler will send it", job_id, exc)
