"""/v1/studies: hyperparameter studies on Optuna, each trial an ordinary job."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CallerDep, SessionDep, SettingsDep, WriterDep
from api.routes.params import plain_text_params
from api.schemas import UtcDatetime
from api.services.studies import cancel_study, study_state, submit_study
from store.models import Study
from store.studies import get_study, list_studies, trial_counts

router = APIRouter(
    prefix="/v1/studies", tags=["studies"], dependencies=[Depends(plain_text_params)]
)


class StudyCreate(BaseModel):
    """A base job spec (with a validation split), a search space over dotted spec paths,
    a sampler, a pruner, a budget and a validation objective."""

    model_config = ConfigDict(
        extra="allow",  # validated whole by sam_core.spec.study.StudyBody, fields named
        json_schema_extra={
            "example": {
                "name": "sam-lr-rho",
                "base": {
                    "model": {"name": "mlp", "hidden": [32]},
                    "data": {"name": "digits", "validation_fraction": 0.2, "batch_size": 32},
                    "optimizer": {"name": "sam", "rho": 0.05, "base": {"name": "sgd", "lr": 0.1}},
                    "training": {"epochs": 3},
                },
                "search_space": {
                    "optimizer.base.lr": {"type": "log_uniform", "low": 0.001, "high": 1.0},
                    "optimizer.rho": {"type": "log_uniform", "low": 0.01, "high": 0.5},
                },
                "sampler": {"name": "tpe", "seed": 0},
                "pruner": {"name": "median", "n_startup_trials": 4},
                "budget": {"trials": 12, "parallel": 2},
                "objective": {"metric": "final_val_loss", "direction": "minimize"},
            }
        },
    )


class StudyPublic(BaseModel):
    id: str
    name: str | None
    status: Literal["running", "succeeded", "cancelled", "failed"]
    metric: str
    direction: str
    tags: list[str]
    benchmark_id: str | None
    label: str | None
    best_value: float | None
    best_trial: int | None
    best_params: dict[str, Any] | None
    error: str | None
    created_at: UtcDatetime
    finished_at: UtcDatetime | None
    body: dict[str, Any]

    @classmethod
    def from_study(cls, s: Study) -> StudyPublic:
        return cls(
            id=s.id,
            name=s.name,
            status=s.status,  # type: ignore[arg-type]
            metric=s.metric,
            direction=s.direction,
            tags=list(s.tags),
            benchmark_id=s.benchmark_id,
            label=s.label,
            best_value=s.best_value,
            best_trial=s.best_trial,
            best_params=s.best_params,
            error=s.error,
            created_at=s.created_at,
            finished_at=s.finished_at,
            body=s.body,
        )


class StudyListed(StudyPublic):
    trials_by_state: dict[str, int]


class StudiesPublic(BaseModel):
    items: list[StudyListed]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null at end")


class StudyReport(StudyPublic):
    best: dict[str, Any] | None = Field(description="value, trial, params and job_id of the best")
    trials_by_state: dict[str, int]
    jobs_by_status: dict[str, int]
    budget: dict[str, Any]
    trials: list[dict[str, Any]] = Field(description="every trial, by number: the whole list")
    history: list[dict[str, Any]] = Field(
        description="the tuning curve: best so far after each finished trial, with the "
        "trials and gradient evaluations spent by then"
    )


class StudyCancelled(BaseModel):
    study_id: str
    cancelled: int = Field(description="queued trial jobs cancelled now")
    stopping: int = Field(description="running trial jobs asked to stop at their next step")


def wake_driver(request: Request) -> None:
    driver = getattr(request.app.state, "study_driver", None)
    if driver is not None:
        driver.wake()


@router.post("", status_code=202, response_model=StudyPublic)
def create_study(
    body: StudyCreate,
    request: Request,
    response: Response,
    background: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    caller: WriterDep,
) -> StudyPublic:
    """Validate the study and accept it; the API's study driver asks Optuna for its
    trials and runs each as a job (GET the study to follow it)."""
    study = submit_study(
        session=session,
        settings=settings,
        team_id=caller.team_id,
        request=body.model_dump(exclude_unset=True),
    )
    background.add_task(wake_driver, request)
    response.headers["Location"] = f"/v1/studies/{study.id}"
    return StudyPublic.from_study(study)


@router.get("", response_model=StudiesPublic)
def read_studies(
    session: SessionDep,
    caller: CallerDep,
    status: Annotated[
        Literal["running", "succeeded", "cancelled", "failed"] | None, Query()
    ] = None,
    benchmark_id: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> StudiesPublic:
    """The team's studies, newest first, with their trials by state; follow
    `next_cursor` for the next page."""
    rows, next_cursor = list_studies(
        session=session,
        team_id=caller.team_id,
        status=status,
        benchmark_id=benchmark_id,
        limit=limit,
        cursor=cursor,
    )
    counts = trial_counts(session=session, study_ids=[s.id for s in rows])
    items = [
        StudyListed(**StudyPublic.from_study(s).model_dump(), trials_by_state=counts[s.id])
        for s in rows
    ]
    return StudiesPublic(items=items, next_cursor=next_cursor)


@router.get("/{study_id}", response_model=StudyReport)
def read_study(study_id: str, session: SessionDep, caller: CallerDep) -> StudyReport:
    """The study: best so far, every trial with its job and state, trials by state and by
    job status, the budget used and the tuning curve."""
    study = get_study(session=session, study_id=study_id, team_id=caller.team_id)
    state = study_state(session=session, study=study)
    state.pop("study")
    return StudyReport(**StudyPublic.from_study(study).model_dump(), **state)


@router.post("/{study_id}/cancel", response_model=StudyCancelled)
def cancel(study_id: str, session: SessionDep, caller: WriterDep) -> StudyCancelled:
    """Stop the study: it asks for no more trials; queued trial jobs are cancelled now and
    running ones stop at their next step. A finished study is a 409."""
    _, cancelled, stopping = cancel_study(
        session=session, team_id=caller.team_id, study_id=study_id
    )
    return StudyCancelled(study_id=study_id, cancelled=cancelled, stopping=stopping)
