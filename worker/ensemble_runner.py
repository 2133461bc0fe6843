"""The ensemble runner: claim a group of jobs and train them as one seed ensemble.

`run_ensemble(job_ids, settings)` is `worker.runner.run_job` for a group of
jobs that differ only in seed and scalar hyperparameters
(`sam_core.training.ensemble.can_ensemble`). Each job is claimed on its own
(`claim_job`), keeps its own lease, heartbeat, stop signal and `Recorder`,
so its metric points, progress, checkpoints, status and summary are exactly
what a solo run would have written; a cancel request stops that job alone.
Jobs that cannot join — not claimable, an invalid spec, a checkpoint to resume
from, or a group `can_ensemble` refuses — go the solo way, one by one, after
the ensemble.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from flatlab.settings import Settings
from sam_core.spec import JobSpec
from sam_core.training.ensemble import can_ensemble, train_ensemble
from sam_core.training.events import Event, Finished
from store.db import make_engine, make_session_factory
from store.leases import LeaseLost
from store.models import Job
from worker.heartbeat import Heartbeat, StopSignal, job_timeout, sigterm_stops
from worker.outcomes import Outcome, from_exception, from_finished
from worker.recorder import Recorder, StorageFailure
from worker.reproducibility import reproducibility_block
from worker.runner import _claim, _end, _JobRun, failed, make_worker_id
from worker.transactions import in_transaction

log = logging.getLogger(__name__)


def run_ensemble(
    job_ids: Sequence[str], settings: Settings, *, worker_id: str | None = None
) -> dict[str, str | None]:
    """Run the jobs to their ends; each job's final status, None where it was not ours."""
    worker_id = worker_id or make_worker_id()
    engine = make_engine(settings.db_url, idle_in_transaction_s=settings.lease_seconds)
    factory = make_session_factory(engine)
    statuses: dict[str, str | None] = dict.fromkeys(job_ids)
    try:
        members: list[tuple[Job, JobSpec]] = []
        solo: list[tuple[Job, JobSpec]] = []
        for job_id in job_ids:
            claimed = _claim_valid(factory, job_id, worker_id, settings, statuses)
            if claimed is not None:
                # A retried attempt resumes from its checkpoint, which only a solo run does.
                (solo if claimed[0].checkpoint_path else members).append(claimed)
        ok, reason = can_ensemble([spec for _, spec in members])
        if not ok and members:
            log.info("jobs %s run one by one: %s", [j.id for j, _ in members], reason)
            solo, members = members + solo, []
        if members:
            statuses.update(_Ensemble(members, factory, settings, worker_id).execute())
        for job, spec in solo:
            statuses[job.id] = _JobRun(job, spec, factory, settings, worker_id).execute()
        return statuses
    finally:
        engine.dispose()


def _claim_valid(
    factory: sessionmaker[Session],
    job_id: str,
    worker_id: str,
    settings: Settings,
    statuses: dict[str, str | None],
) -> tuple[Job, JobSpec] | None:
    """The claimed job and its spec; None if not ours, or if its spec failed it."""
    job = in_transaction(
        factory, lambda s: _claim(s, job_id, worker_id, settings), what="claiming the job"
    )
    if job is None:
        return None
    log.info("job %s: attempt %d on %s (ensemble)", job_id, job.attempts, worker_id)
    try:
        return job, JobSpec.model_validate(job.spec)
    except ValueError as exc:
        statuses[job_id] = _end(factory, job, worker_id, settings, from_exception(exc, 0, None))
        return None


class _Ensemble:
    """One attempt at a group of claimed jobs, trained together."""

    def __init__(
        self,
        members: list[tuple[Job, JobSpec]],
        factory: sessionmaker[Session],
        settings: Settings,
        worker_id: str,
    ) -> None:
        self.jobs = [job for job, _ in members]
        self.specs = [spec for _, spec in members]
        self.factory, self.settings, self.worker_id = factory, settings, worker_id
        default = settings.job_timeout_seconds
        self.stops = [StopSignal(job_timeout(s.limits.timeout_s, default)) for s in self.specs]
        self.shutdown = StopSignal(None)
        self.recorders = [self._recorder(job, spec) for job, spec in members]
        self.finished: list[Finished | None] = [None] * len(members)
        # A member whose writes were refused (lost lease) or failed (storage) stops alone.
        self.errors: list[Exception | None] = [None] * len(members)

    def execute(self) -> dict[str, str | None]:
        started = time.monotonic()
        heartbeats = [
            self._heartbeat(job, stop) for job, stop in zip(self.jobs, self.stops, strict=True)
        ]
        for heartbeat in heartbeats:
            heartbeat.start()
        try:
            outcomes = self._train()
        finally:
            for heartbeat in heartbeats:
                heartbeat.close()
        statuses = {}
        for job, outcome in zip(self.jobs, outcomes, strict=True):
            if outcome.summary is not None:
                outcome.summary.setdefault("wall_seconds", time.monotonic() - started)
            statuses[job.id] = _end(self.factory, job, self.worker_id, self.settings, outcome)
        return statuses

    def _train(self) -> list[Outcome]:
        with sigterm_stops(self.shutdown):
            try:
                train_ensemble(
                    self.specs,
                    self._on_event,
                    self._should_stop,
                    data_dir=str(self.settings.datasets_dir),
                )
            except SQLAlchemyError:
                raise  # the database is gone: the leases expire and the jobs are retried
            except Exception as exc:
                log.exception("ensemble of jobs %s failed", [job.id for job in self.jobs])
                return [self._outcome(i, exc) for i in range(len(self.jobs))]
        return [self._outcome(i, None) for i in range(len(self.jobs))]

    def _on_event(self, i: int, event: Event) -> None:
        if self.errors[i] is not None:
            return
        try:
            self.recorders[i](event)
        except (LeaseLost, StorageFailure) as exc:
            self.errors[i] = exc
            self.stops[i].set("lost")  # this member stops; the others train on
            return
        if isinstance(event, Finished):
            self.finished[i] = event

    def _should_stop(self, i: int) -> bool:
        if self.shutdown.reason is not None:  # SIGTERM: every member checkpoints and goes back
            self.stops[i].set(self.shutdown.reason)
        return self.stops[i]()

    def _outcome(self, i: int, exc: Exception | None) -> Outcome:
        """A member's outcome: from its `Finished`, or from the exception that cut it short."""
        finished, recorder = self.finished[i], self.recorders[i]
        exc = self.errors[i] or exc
        if exc is not None and finished is None:
            return failed(exc, recorder, self.jobs[i].id, self.specs[i])
        if finished is None:
            raise RuntimeError(f"job {self.jobs[i].id}: the ensemble ended without finishing it")
        try:
            recorder.flush()
        except LeaseLost:
            return Outcome("lost")
        return from_finished(finished, self.stops[i].reason, self.specs[i], recorder.storage_error)

    def _recorder(self, job: Job, spec: JobSpec) -> Recorder:
        return Recorder(
            self.factory,
            job_id=job.id,
            team_id=job.team_id,
            worker_id=self.worker_id,
            artifacts_dir=self.settings.artifacts_dir,
            flush_seconds=self.settings.metric_flush_seconds,
            reproducibility={
                **reproducibility_block(spec, job, self.worker_id),
                # Its clocks are the ensemble's: say whom it trained with.
                "ensemble": {"size": len(self.jobs), "job_ids": [j.id for j in self.jobs]},
            },
        )

    def _heartbeat(self, job: Job, stop: StopSignal) -> Heartbeat:
        return Heartbeat(
            self.factory,
            job_id=job.id,
            worker_id=self.worker_id,
            interval=self.settings.heartbeat_seconds,
            lease_seconds=self.settings.lease_seconds,
            stop=stop,
        )
