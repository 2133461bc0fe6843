"""/v1/jobs: submit, list, read, cancel, delete, and a job's metrics, live events and artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Query, Request, Response
from fastapi.responses import FileResponse
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from api.db_gate import gate, run_outside
from api.deps import CallerDep, SessionDep, SettingsDep, WriterDep, json_response, run_in_session
from api.routes.params import plain_text_params
from api.schemas import (
    ArtifactPublic,
    ArtifactsPublic,
    JobCreate,
    JobDeleted,
    JobPublic,
    JobsPublic,
    JobsQuery,
    MetricColumnsPublic,
    MetricsPublic,
)
from api.services.artifacts import media_type, remove_files
from api.services.events import job_events
from api.services.jobs import enqueue_after_commit, public_jobs, submit_job
from api.services.metric_formats import ARROW_STREAM, MetricsFormat, choose_format, render
from api.services.metrics import MAX_STEP, check_names, read_downsampled, read_page
from api.services.names import check_choice
from store.artifacts import get_artifact, list_artifacts
from store.errors import NotFound, Unprocessable
from store.jobs import JobFilters, delete_job, get_job, list_jobs, request_cancel
from store.models import Job

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[Depends(plain_text_params)])

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255, description="retry-safe key"),
]


# Routes are `async` and do their database work in one thread (`run_in_session`
# for reads: the work, the commit and the response built in that thread), so a
# request never holds a connection while it waits for a thread; its slot of
# `api.db_gate`, taken before its session, keeps the pool from running dry.


@router.post("", status_code=202, response_model=JobPublic)
async def create_job(
    spec: JobCreate,
    request: Request,
    response: Response,
    background: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    caller: WriterDep,
    idempotency_key: IdempotencyKey = None,
) -> JobPublic:
    """Submit a training job; it is queued and sent to a worker once committed."""

    def submit() -> tuple[Job, bool, list[JobPublic]]:
        # One thread for the whole use of the connection: a request holding a pooled
        # connection must not wait for a second thread (that starves the pool).
        job, created = submit_job(
            session=session,
            settings=settings,
            team_id=caller.team_id,
            spec=spec,
            idempotency_key=idempotency_key,
        )
        return job, created, public_jobs(session, settings, [job])

    job, created, public = await run_in_threadpool(submit)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    if created:  # the session dependency commits before this background task runs
        state = request.app.state
        background.add_task(
            run_outside(
                request.app,
                enqueue_after_commit,
                state.celery,
                state.session_factory,
                job.id,
                job.queue,
            )
        )
    else:
        response.headers["Idempotent-Replayed"] = "true"
    return public[0]


@router.get("", response_model=JobsPublic)
async def read_jobs(
    session: SessionDep,
    settings: SettingsDep,
    caller: CallerDep,
    query: Annotated[JobsQuery, Query()],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> Response:
    """List the team's jobs, newest first; follow `next_cursor` for the next page."""
    for column in ("optimizer", "model", "dataset"):
        if (value := getattr(query, column)) is not None:
            check_choice(column, value, column)

    def work() -> Response:
        jobs, next_cursor = list_jobs(
            session=session,
            team_id=caller.team_id,
            filters=JobFilters(**query.model_dump()),
            limit=limit,
            cursor=cursor,
        )
        page = JobsPublic(items=public_jobs(session, settings, jobs), next_cursor=next_cursor)
        return json_response(page)

    return await run_in_session(session, work)


@router.get("/{job_id}", response_model=JobPublic)
async def read_job(
    job_id: str, session: SessionDep, settings: SettingsDep, caller: CallerDep
) -> Response:
    """A job: status, progress, timings, attempts, summary, error, waiting reason, spec…"""

    def work() -> Response:
        job = get_job(session=session, job_id=job_id, team_id=caller.team_id)
        return json_response(public_jobs(session, settings, [job])[0])

    return await run_in_session(session, work)


@router.post("/{job_id}/cancel", response_model=JobPublic, status_code=202)
async def cancel_job(
    job_id: str, response: Response, session: SessionDep, caller: WriterDep
) -> JobPublic:
    """Cancel a queued job now (200), or ask a running one to stop at its next step (202)."""
    job = await run_in_threadpool(
        request_cancel, session=session, team_id=caller.team_id, job_id=job_id
    )
    if job.status == "cancelled":
        response.status_code = 200
    return JobPublic.from_job(job)


@router.get(
    "/{job_id}/metrics",
    response_model=MetricsPublic | MetricColumnsPublic,
    responses={
        200: {"content": {ARROW_STREAM: {}}, "description": "points, columns or Arrow"},
        400: {"description": "a `cursor` not taken from `next_cursor`"},
        422: {"description": "an unknown series in `names` (with the closest names)"},
    },
)
async def read_metrics(
    job_id: str,
    session: SessionDep,
    caller: CallerDep,
    names: Annotated[str | None, Query(description="comma-separated: train_loss,test_acc")] = None,
    since_step: Annotated[int | None, Query(ge=0, le=MAX_STEP)] = None,
    max_points: Annotated[
        int | None,
        Query(ge=4, le=100_000, description="downsample each series to at most this many points"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100_000, description="points per page")] = 100_000,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
    format: Annotated[
        MetricsFormat | None,
        Query(description="points (default), columns, or arrow (an Arrow IPC stream)"),
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """A job's metric series, grouped by name, in step order: complete in pages of `limit`
    (follow `next_cursor`), or with `max_points` each series downsampled keeping its extremes.
    `format=columns` sends each series as arrays (`step`, `epoch`, `value`, `unix_time`);
    `format=arrow` or `Accept: application/vnd.apache.arrow.stream` an Arrow IPC stream."""
    wanted = [n.strip() for n in names.split(",") if n.strip()] if names else None
    chosen = choose_format(format, accept)

    def work() -> Response:
        get_job(session=session, job_id=job_id, team_id=caller.team_id)
        if wanted:
            check_names(session=session, job_id=job_id, names=wanted)
        if max_points is not None:
            if cursor is not None:
                msg = "max_points answers in one page: drop cursor (or max_points to page)"
                raise Unprocessable(f"cursor: {msg}", errors=[{"loc": "cursor", "msg": msg}])
            page = read_downsampled(
                session=session,
                job_id=job_id,
                names=wanted,
                since_step=since_step,
                max_points=max_points,
            )
        else:
            page = read_page(
                session=session,
                job_id=job_id,
                names=wanted,
                since_step=since_step,
                limit=limit,
                cursor=cursor,
            )
        return render(job_id, page, chosen)

    return await run_in_session(session, work)


@router.get("/{job_id}/events", response_class=EventSourceResponse)
def stream_events(
    job_id: str,
    request: Request,
    session: SessionDep,
    caller: CallerDep,
    last_event_id: Annotated[int, Header(alias="Last-Event-ID", ge=0, le=2**63 - 1)] = 0,
) -> EventSourceResponse:
    """Server-sent events: `status` now and on change, `metric` per new point; ends when done."""
    get_job(session=session, job_id=job_id, team_id=caller.team_id)
    state = request.app.state
    events = job_events(
        state.session_factory,
        job_id,
        caller.team_id,
        last_event_id,
        state.sse_poll_seconds,
        limiter=gate(request.app).reserve,  # the stream's polls are outside the request
    )
    return EventSourceResponse(events, ping=15)


@router.get("/{job_id}/artifacts", response_model=ArtifactsPublic)
async def read_artifacts(job_id: str, session: SessionDep, caller: CallerDep) -> Response:
    """Checkpoints, final weights and plots a job left behind."""

    def work() -> Response:
        get_job(session=session, job_id=job_id, team_id=caller.team_id)
        rows = list_artifacts(session=session, job_id=job_id)
        return json_response(ArtifactsPublic(items=[ArtifactPublic.from_artifact(a) for a in rows]))

    return await run_in_session(session, work)


@router.get("/{job_id}/artifacts/{name:path}", response_class=FileResponse)
def download_artifact(
    job_id: str, name: str, session: SessionDep, settings: SettingsDep, caller: CallerDep
) -> FileResponse:
    """One artifact's file; only files inside the artifact folder are served."""
    get_job(session=session, job_id=job_id, team_id=caller.team_id)
    artifact = get_artifact(session=session, job_id=job_id, name=name)
    root = settings.artifacts_dir
    path = (root / artifact.path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFound(f"the file of artifact {name!r} is missing", resource="artifact")
    return FileResponse(path, filename=Path(artifact.name).name, media_type=media_type(name))


@router.delete(
    "/{job_id}",
    response_model=JobDeleted,
    responses={409: {"description": "the job is queued or running: cancel it first"}},
)
def remove_job(
    job_id: str,
    session: SessionDep,
    settings: SettingsDep,
    caller: WriterDep,
    background: BackgroundTasks,
) -> JobDeleted:
    """Delete a finished job with its metric points, artifacts (rows and files) and its
    places in benchmarks; a queued or running job is a 409 until it is cancelled."""
    done = delete_job(session=session, team_id=caller.team_id, job_id=job_id)
    # the session dependency commits before this background task runs
    background.add_task(remove_files, settings.artifacts_dir, job_id, done["paths"])
    return JobDeleted(id=job_id, deleted=done["counts"])
