"""Submitting a study, reading its state, and cancelling it.

A study is accepted whole or refused with a 422 naming the field: its base spec with
example values of every searched path must be a valid job spec, its objective a
validation metric. Its trials are created by the driver (`api.services.study_driver`),
not here, so one code path asks Optuna, whether the API just started or restarted.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.orm import Session

from api.services.bodies import validate_body
from api.services.datasets import check_dataset_access
from api.services.jobs import check_data_present
from flatlab.settings import Settings
from sam_core.spec.study import StudyBody, StudyInvalid, check_study
from store.errors import Conflict, Unprocessable
from store.jobs import cancel_jobs
from store.models import JOB_STATUSES, Study, StudyTrial, utcnow
from store.studies import create_study, get_study, study_trials

TRIAL_STATES = ("running", "complete", "pruned", "fail")


def read_study_body(request: dict[str, Any]) -> StudyBody:
    """The request as a study body, or a 422 naming each bad field."""
    return validate_body(StudyBody, request)


def validate_study(session: Session, settings: Settings, team_id: str, body: StudyBody) -> None:
    """422 when the study cannot run (`check_study`), its data set is not the team's or
    its files are missing."""
    try:
        spec = check_study(body)
    except StudyInvalid as exc:
        raise Unprocessable(str(exc), errors=exc.errors) from None
    check_dataset_access(session=session, team_id=team_id, specs=[spec])
    check_data_present(settings, [spec])


def submit_study(
    *,
    session: Session,
    settings: Settings,
    team_id: str,
    request: dict[str, Any],
    benchmark_id: str | None = None,
    label: str | None = None,
) -> Study:
    body = read_study_body(request)
    validate_study(session, settings, team_id, body)
    return create_study(
        session=session,
        team_id=team_id,
        body=body.model_dump(mode="json"),
        name=body.name,
        metric=body.objective.metric,
        direction=body.objective.direction,
        tags=body.tags,
        benchmark_id=benchmark_id,
        label=label,
    )


def study_state(*, session: Session, study: Study) -> dict[str, Any]:
    """Best so far, trials by state and by job status, budget used, and the history."""
    rows = study_trials(session=session, study_id=study.id)
    body = StudyBody.model_validate(study.body)
    by_state = dict.fromkeys(TRIAL_STATES, 0)
    by_job_status = dict.fromkeys(JOB_STATUSES, 0)
    for trial, job in rows:
        by_state[trial.state] = by_state.get(trial.state, 0) + 1
        by_job_status[job.status] += 1
    best_job = next((job.id for t, job in rows if t.number == study.best_trial), None)
    return {
        "study": study,
        "best": None
        if study.best_trial is None
        else {
            "value": study.best_value,
            "trial": study.best_trial,
            "params": study.best_params,
            "job_id": best_job,
        },
        "trials_by_state": by_state,
        "jobs_by_status": by_job_status,
        "budget": {
            **body.budget.model_dump(),
            "trials_used": len(rows),
            "grad_evals_used": sum(t.grad_evals or 0.0 for t, _ in rows),
        },
        "trials": [_trial_public(t, job.status) for t, job in rows],
        "history": tuning_curve(
            [(t, job.status) for t, job in rows], maximize=study.direction == "maximize"
        ),
    }


def _trial_public(trial: StudyTrial, job_status: str) -> dict[str, Any]:
    return {
        "number": trial.number,
        "job_id": trial.job_id,
        "params": trial.params,
        "state": trial.state,
        "value": trial.value,
        "job_status": job_status,
        "grad_evals": trial.grad_evals,
        "reused": trial.reused,
    }


def tuning_curve(rows: list[tuple[StudyTrial, str]], *, maximize: bool) -> list[dict[str, Any]]:
    """Best-so-far of the finished trials in the order they finished, with the budget
    (trials and gradient evaluations) spent by then: the tuning curve."""
    done = sorted(
        (t for t, _ in rows if t.state != "running" and t.finished_at is not None),
        key=lambda t: (t.finished_at, t.number),
    )
    out, best, spent = [], None, 0.0
    for i, trial in enumerate(done, start=1):
        spent += trial.grad_evals or 0.0
        if trial.state == "complete" and trial.value is not None and math.isfinite(trial.value):
            better = best is None or (trial.value > best if maximize else trial.value < best)
            best = trial.value if better else best
        out.append({"trials": i, "grad_evals": spent, "trial": trial.number, "best_value": best})
    return out


def cancel_study(*, session: Session, team_id: str, study_id: str) -> tuple[Study, int, int]:
    """Stop the study: no new trials; its queued trial jobs cancelled, running ones asked to
    stop. Returns the study and (cancelled, stopping). A finished study is a Conflict."""
    study = get_study(session=session, study_id=study_id, team_id=team_id)
    if study.status != "running":
        raise Conflict(f"study {study_id} is already {study.status}", id=study_id)
    study.status, study.finished_at = "cancelled", utcnow()
    open_jobs = [t.job_id for t, _ in study_trials(session=session, study_id=study_id)]
    cancelled, stopping = cancel_jobs(session=session, job_ids=open_jobs)
    session.flush()
    return study, cancelled, stopping
