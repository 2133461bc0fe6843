"""The study driver: asks Optuna for trials, runs each as a job, feeds back what the jobs
report, prunes, and tells Optuna how each trial ended.

One pass (`drive_once`) looks at every running study, each in its own transaction with
the study row locked (`FOR UPDATE SKIP LOCKED`), so several API processes may drive at
once and a study is driven by one of them at a time. Everything a pass needs is in the
database (the study and trial rows, the jobs, Optuna's tables), so a restarted API
picks up where the last stopped, and a job re-queued after its worker died is simply a
trial still running. Each step is idempotent:

- an Optuna trial with no job yet (a pass died between ask and commit) gets one;
- an intermediate value already reported is not reported again (`reported_step`);
- a trial already told is not told again (`optuna_glue.tell`).

The API runs `StudyDriver` (a thread) every `FLATLAB_STUDY_POLL_SECONDS`.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.orm import Session, sessionmaker

from api.services import optuna_glue as glue
from api.services.jobs import auto_queue_now, enqueue_group_after_commit
from api.services.tuned import start_reruns, tuned_benchmarks_waiting
from flatlab.settings import Settings
from sam_core.spec.study import (
    MAX_TRIALS,
    StudyBody,
    StudyInvalid,
    apply_params,
    intermediate_metric,
)
from store.db import session_scope
from store.jobs import create_job
from store.models import Job, Study, StudyTrial, utcnow
from store.studies import (
    add_trial,
    lock_benchmark,
    lock_study,
    new_points,
    request_prune,
    running_study_ids,
    same_spec_job,
    study_trials,
)

log = logging.getLogger(__name__)

ENDED = {
    "succeeded": TrialState.COMPLETE,
    "pruned": TrialState.PRUNED,
    "failed": TrialState.FAIL,
    "cancelled": TrialState.FAIL,
}
STATE_NAMES = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned"}


@dataclass
class Pass:
    """What one pass did (for logs and tests)."""

    created: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    told: int = 0
    finished: list[str] = field(default_factory=list)
    to_send: list[tuple[str, str]] = field(default_factory=list)


def drive_once(factory: sessionmaker[Session], settings: Settings, celery: Celery) -> Pass:
    """One pass over every running study; new trial jobs go to the broker after commit."""
    done = Pass()
    with session_scope(factory) as session:
        ids = running_study_ids(session=session)
    for study_id in ids:
        try:
            with session_scope(factory) as session:
                study = lock_study(session=session, study_id=study_id)
                if study is not None:
                    drive_study(session, settings, study, done)
        except Exception as exc:
            log.exception("study %s: driver pass failed; the next pass tries again", study_id)
            _note_error(factory, study_id, f"the last driver pass failed (retried): {exc}")
    _start_tuned_reruns(factory, settings, done)
    for job_id, queue in done.to_send:
        enqueue_group_after_commit(celery, factory, [job_id], queue)
    return done


def _start_tuned_reruns(factory: sessionmaker[Session], settings: Settings, done: Pass) -> None:
    """Tuned benchmarks whose studies have all finished get their re-run jobs (once)."""
    with session_scope(factory) as session:
        waiting = tuned_benchmarks_waiting(session)
    for benchmark_id in waiting:
        try:
            with session_scope(factory) as session:
                benchmark = lock_benchmark(session=session, benchmark_id=benchmark_id)
                if benchmark is not None:
                    for job in start_reruns(session, settings, benchmark):
                        done.created.append(job.id)
                        done.to_send.append((job.id, job.queue))
        except Exception:
            log.exception("benchmark %s: could not start its re-runs; next pass", benchmark_id)


def drive_study(session: Session, settings: Settings, study: Study, done: Pass) -> None:
    body = StudyBody.model_validate(study.body)
    optuna_study = glue.open_study(settings.db_url, study.optuna_name, body)
    study.error = None
    frozen = {t.number: t for t in glue.trials(optuna_study)}
    rows = study_trials(session=session, study_id=study.id)
    metric = intermediate_metric(study.metric)
    for trial, job in rows:
        if trial.state == "running":
            _follow(session, optuna_study, frozen[trial.number], trial, job, metric, study, done)
    known = {trial.number for trial, _ in rows}
    for number, orphan in sorted(frozen.items()):  # asked, but the pass died before its job
        if number not in known and orphan.state == TrialState.RUNNING:
            _materialize(session, settings, study, body, orphan, done)
    asked = len(frozen)  # a trial whose spec is refused is told failed and has no row
    while _budget_left(session, study, body, asked):
        new = glue.ask(settings.db_url, study.optuna_name, body)
        asked += 1
        _materialize(session, settings, study, body, new, done)
    _update_best(study, optuna_study, body)
    open_trials = [t for t, _ in study_trials(session=session, study_id=study.id)]
    if not any(t.state == "running" for t in open_trials) and not _budget_left(
        session, study, body, asked, parallel=False
    ):
        study.status = "succeeded" if study.best_trial is not None else "failed"
        if study.best_trial is None:
            study.error = "no trial completed with a finite objective value"
        study.finished_at = utcnow()
        done.finished.append(study.id)
    session.flush()


def _follow(
    session: Session,
    optuna_study: Any,
    frozen: FrozenTrial,
    trial: StudyTrial,
    job: Job,
    metric: str,
    study: Study,
    done: Pass,
) -> None:
    """Report the job's new evaluations, prune it if the pruner says so, tell when it ends."""
    points = new_points(session=session, job_id=job.id, name=metric, after_step=trial.reported_step)
    for step, value in points:
        prune = glue.report(optuna_study, frozen, step, value)
        trial.reported_step = step
        if prune and job.status == "running":
            pruner = study.body["pruner"]["name"]
            reason = (
                f"pruned at step {step} by study {study.id}'s {pruner} pruner: its {metric} "
                f"there, {value:.4g}, ranks among the trials it stops"
            )
            if request_prune(session=session, job_id=job.id, reason=reason):
                done.pruned.append(job.id)
            break
    if job.status not in ENDED:
        return
    state = ENDED[job.status]
    summary = job.summary or {}
    final: Any = summary.get(study.metric)
    if state == TrialState.COMPLETE and not _finite(final):
        state = TrialState.FAIL
    glue.tell(optuna_study, frozen, float(final) if state == TrialState.COMPLETE else None, state)
    trial.state = STATE_NAMES.get(state, "fail")
    trial.value = float(final) if _finite(final) else None
    trial.grad_evals = float(summary.get("grad_evals") or 0.0)
    trial.finished_at = job.finished_at or utcnow()
    done.told += 1


def _materialize(
    session: Session,
    settings: Settings,
    study: Study,
    body: StudyBody,
    frozen: FrozenTrial,
    done: Pass,
) -> None:
    """The job of an asked trial: an earlier job of the same spec, or a new one."""
    params = glue.decode(body, frozen.params)
    optuna_study = glue.open_study(settings.db_url, study.optuna_name, body)
    try:
        spec = apply_params(body.base, params)
    except StudyInvalid as exc:  # a sampled value the spec refuses: the trial fails
        log.info("study %s trial %s: %s", study.id, frozen.number, exc)
        glue.tell(optuna_study, frozen, None, TrialState.FAIL)
        return
    spec = spec.model_copy(update={"tags": list(dict.fromkeys([*spec.tags, *body.tags]))})
    job_ids = [t.job_id for t, _ in study_trials(session=session, study_id=study.id)]
    job_id = None
    if body.reuse:
        job_id = same_spec_job(
            session=session, team_id=study.team_id, spec_hash=spec.hash(), study_job_ids=job_ids
        )
    reused = job_id is not None
    if job_id is None:
        job = create_job(
            session=session,
            team_id=study.team_id,
            spec=spec,
            max_attempts=settings.max_attempts,
            benchmark_id=study.benchmark_id,
            auto_queue=auto_queue_now(session, settings),
        )
        job.label = f"{study.label or study.name or 'study'}·trial {frozen.number}"[:100]
        job_id = job.id
        done.created.append(job.id)
        done.to_send.append((job.id, job.queue))
    add_trial(
        session=session,
        study_id=study.id,
        number=frozen.number,
        job_id=job_id,
        params=params,
        reused=reused,
    )


def _budget_left(
    session: Session, study: Study, body: StudyBody, asked: int, *, parallel: bool = True
) -> bool:
    """Whether another trial may start now (`parallel`: and a slot is free); `asked` counts
    every trial Optuna gave, those refused before they had a job included."""
    if study.status != "running" or asked >= MAX_TRIALS:
        return False
    rows = [t for t, _ in study_trials(session=session, study_id=study.id)]
    running = sum(t.state == "running" for t in rows)
    if parallel and running >= body.budget.parallel:
        return False
    grid = glue.grid_size(body)
    if grid is not None and asked >= grid:
        return False
    if body.budget.trials is not None:
        return asked < body.budget.trials
    finished = [t.grad_evals or 0.0 for t in rows if t.state != "running"]
    expected = sum(finished) / len(finished) if finished else 0.0
    return sum(finished) + running * expected < (body.budget.grad_evals or 0.0)


def _update_best(study: Study, optuna_study: Any, body: StudyBody) -> None:
    best = glue.best(optuna_study)
    if best is not None:
        study.best_value = float(best.value) if best.value is not None else None
        study.best_trial = best.number
        study.best_params = glue.decode(body, best.params)


def _note_error(factory: sessionmaker[Session], study_id: str, message: str) -> None:
    """Say on the study why it is not moving (cleared by the next good pass)."""
    try:
        with session_scope(factory) as session:
            study = session.get(Study, study_id)
            if study is not None:
                study.error = message[:2000]
    except Exception:
        log.warning("study %s: could not record the driver's error", study_id, exc_info=True)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


class StudyDriver(threading.Thread):
    """`drive_once` every `settings.study_poll_seconds` (and at once after `wake()`)."""

    def __init__(self, settings: Settings, celery: Celery, factory: sessionmaker[Session]) -> None:
        super().__init__(name="flatlab-study-driver", daemon=True)
        self.settings, self.celery, self.factory = settings, celery, factory
        self._done, self._wake = threading.Event(), threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self._wake.wait(self.settings.study_poll_seconds)
            self._wake.clear()
            if self._done.is_set():
                return
            try:
                drive_once(self.factory, self.settings, self.celery)
            except Exception as exc:  # the database may be away; try again next time
                log.warning("study driver pass failed: %s", exc)

    def wake(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._done.set()
        self._wake.set()
