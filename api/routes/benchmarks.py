"""/v1/benchmarks: submit a grid of jobs, and read its progress and comparison."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.db_gate import run_outside
from api.deps import CallerDep, SessionDep, SettingsDep, WriterDep
from api.routes.params import plain_text_params
from api.routes.studies import wake_driver
from api.schemas import UtcDatetime
from api.services.benchmarks import (
    benchmark_report,
    cancel_unfinished,
    check_rank_metric,
    enqueue_jobs,
    submit_benchmark,
)
from api.services.tuned import submit_tuned
from flatlab.tuned_presets import TUNED_PRESETS, apply_tuned_preset
from store.benchmarks import list_benchmarks, status_counts
from store.models import Benchmark

router = APIRouter(
    prefix="/v1/benchmarks", tags=["benchmarks"], dependencies=[Depends(plain_text_params)]
)


class BenchmarkCreate(BaseModel):
    """A base job spec, axes over dotted spec paths, and seeds; or a preset and overrides."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "name": "sam-vs-sgd",
                "base": {
                    "model": {"name": "mlp", "hidden": [64]},
                    "data": {"name": "digits"},
                    "optimizer": {"name": "sgd"},
                    "training": {"epochs": 5},
                },
                "axes": {
                    "optimizer": [{"name": "sgd", "label": "SGD"}, {"name": "sam", "label": "SAM"}],
                    "optimizer.base.lr": [0.05, 0.1],
                },
                "seeds": [0, 1, 2],
                "baseline": "SGD·lr=0.1",
            }
        },
    )

    name: str | None = None
    tags: list[str] | None = None
    base: dict[str, Any] | None = None
    axes: dict[str, list[Any] | None] | None = None
    seeds: list[int] | None = None
    baseline: str | None = None
    reuse: bool | None = None
    preset: str | None = Field(None, description="a name from GET /v1/presets")
    mode: Literal["grid", "tuned"] | None = Field(
        None,
        description="`tuned`: tune each of `optimizers` by a study on the same `budget`, then "
        "re-run each one's best configuration over `seeds` (default 10) and compare",
    )
    optimizers: list[dict[str, Any]] | None = Field(
        None, description="tuned: each `{label, optimizer, search_space}`"
    )
    sampler: dict[str, Any] | None = Field(None, description="tuned: as in POST /v1/studies")
    pruner: dict[str, Any] | None = Field(None, description="tuned: as in POST /v1/studies")
    budget: dict[str, Any] | None = Field(None, description="tuned: each study's budget")
    objective: dict[str, Any] | None = Field(None, description="tuned: a validation metric")


class BenchmarkPublic(BaseModel):
    id: str
    name: str | None
    baseline: str | None
    tags: list[str]
    created_at: UtcDatetime
    jobs: int = Field(description="points of the grid")
    created: int = Field(description="jobs created to run")
    reused: int = Field(description="points linked to a succeeded job with the same spec_hash")
    body: dict[str, Any]

    @classmethod
    def from_benchmark(cls, b: Benchmark, *, jobs: int, created: int) -> BenchmarkPublic:
        return cls(
            id=b.id,
            name=b.name,
            baseline=b.baseline,
            tags=list(b.tags),
            created_at=b.created_at,
            jobs=jobs,
            created=created,
            reused=jobs - created,
            body=b.body,
        )


class BenchmarkJobPublic(BaseModel):
    job_id: str
    label: str
    seed: int
    status: str
    reused: bool


class BenchmarkCreated(BenchmarkPublic):
    skipped_axes: dict[str, list[str]] = Field(
        default_factory=dict,
        description="axis → configurations it was skipped for: their optimizer, model or data "
        "block has no such field (an `optimizer.rho` axis beside SGD)",
    )


class BenchmarkListed(BenchmarkPublic):
    by_status: dict[str, int] = Field(description="the benchmark's jobs by status")


class BenchmarksPublic(BaseModel):
    items: list[BenchmarkListed]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null at end")


class BenchmarkCancelled(BaseModel):
    benchmark_id: str
    cancelled: int = Field(description="queued jobs cancelled now")
    stopping: int = Field(description="running jobs asked to stop at their next step")
    unfinished: int = Field(description="jobs queued or running before this request")


class BenchmarkReport(BenchmarkPublic):
    progress: dict[str, Any]
    job_list: list[BenchmarkJobPublic]
    comparison: dict[str, Any]
    tuning: dict[str, Any] | None = Field(
        None,
        description="tuned mode: what was tuned, on what split, with what budget; each "
        "optimizer's study, best configuration and tuning curve",
    )


@router.post("", status_code=202, response_model=BenchmarkCreated)
def create_benchmark(
    body: BenchmarkCreate,
    request: Request,
    response: Response,
    background: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    caller: WriterDep,
) -> BenchmarkCreated:
    """Expand and validate the grid, create one job per point, queue them after commit.
    In `mode: tuned`, create one study per optimizer; the re-runs follow their end."""
    raw = body.model_dump(exclude_unset=True)
    if raw.get("preset") in TUNED_PRESETS:
        raw = apply_tuned_preset(raw)
    if raw.get("mode") == "tuned":
        benchmark, _ = submit_tuned(
            session=session, settings=settings, team_id=caller.team_id, request=raw
        )
        background.add_task(wake_driver, request)
        response.headers["Location"] = f"/v1/benchmarks/{benchmark.id}"
        public = BenchmarkPublic.from_benchmark(benchmark, jobs=0, created=0)
        return BenchmarkCreated(**public.model_dump())
    raw.pop("mode", None)
    done = submit_benchmark(session=session, settings=settings, team_id=caller.team_id, request=raw)
    state = request.app.state
    background.add_task(
        run_outside(request.app, enqueue_jobs, state.celery, state.session_factory, done.groups)
    )
    response.headers["Location"] = f"/v1/benchmarks/{done.benchmark.id}"
    created = len(done.created)
    public = BenchmarkPublic.from_benchmark(
        done.benchmark, jobs=created + done.reused, created=created
    )
    return BenchmarkCreated(**public.model_dump(), skipped_axes=done.skipped)


@router.get("", response_model=BenchmarksPublic)
def read_benchmarks(
    session: SessionDep,
    caller: CallerDep,
    name: Annotated[str | None, Query(max_length=200, description="exact name")] = None,
    tag: Annotated[str | None, Query(description="benchmarks with this tag")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> BenchmarksPublic:
    """List the team's benchmarks, newest first, with their jobs counted by status;
    follow `next_cursor` for the next page."""
    rows, next_cursor = list_benchmarks(
        session=session, team_id=caller.team_id, name=name, tag=tag, limit=limit, cursor=cursor
    )
    counts = status_counts(session=session, benchmark_ids=[b.id for b in rows])
    items = []
    for b in rows:
        by_status, reused = counts[b.id]["by_status"], sum(counts[b.id]["reused"].values())
        total = sum(by_status.values())
        public = BenchmarkPublic.from_benchmark(b, jobs=total, created=total - reused)
        items.append(BenchmarkListed(**public.model_dump(), by_status=by_status))
    return BenchmarksPublic(items=items, next_cursor=next_cursor)


@router.post(
    "/{benchmark_id}/cancel",
    response_model=BenchmarkCancelled,
    responses={
        202: {
            "model": BenchmarkCancelled,
            "description": "some jobs were running: they stop at their next step",
        }
    },
)
async def cancel_benchmark(
    benchmark_id: str, response: Response, session: SessionDep, caller: WriterDep
) -> BenchmarkCancelled:
    """Cancel every unfinished job of the benchmark: queued ones now, running ones at their
    next step (202 when any was running); finished and reused jobs are left as they are."""
    cancelled, stopping, unfinished = await run_in_threadpool(
        cancel_unfinished, session=session, team_id=caller.team_id, benchmark_id=benchmark_id
    )
    if stopping:
        response.status_code = 202
    return BenchmarkCancelled(
        benchmark_id=benchmark_id, cancelled=cancelled, stopping=stopping, unfinished=unfinished
    )


@router.get("/{benchmark_id}", response_model=BenchmarkReport)
def read_benchmark(
    benchmark_id: str,
    session: SessionDep,
    caller: CallerDep,
    metric: Annotated[str, Query(description="summary metric to rank on")] = "final_test_acc",
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
) -> BenchmarkReport:
    """Progress by status and the comparison: per-configuration statistics over seeds,
    ranking, paired tests against the baseline, Kendall τ of sharpness vs generalization
    gap, and the test metrics at equal gradient evaluations and equal training time."""
    check_rank_metric(session=session, team_id=caller.team_id, metric=metric)
    report = benchmark_report(
        session=session,
        team_id=caller.team_id,
        benchmark_id=benchmark_id,
        metric=metric,
        order=order,
    )
    rows = report["jobs"]
    created = sum(1 for link, _ in rows if not link.reused)
    base = BenchmarkPublic.from_benchmark(report["benchmark"], jobs=len(rows), created=created)
    return BenchmarkReport(
        **base.model_dump(),
        progress=report["progress"],
        job_list=[
            BenchmarkJobPublic(
                job_id=job.id,
                label=link.label,
                seed=link.seed,
                status=job.status,
                reused=link.reused,
            )
            for link, job in rows
        ],
        comparison=report["comparison"],
        tuning=report.get("tuning"),
    )
