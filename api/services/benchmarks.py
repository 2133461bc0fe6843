"""Submitting a benchmark (one job per grid point, in one transaction) and reporting on it.

The grid is expanded and validated whole before any row is written; the jobs,
the benchmark and its links commit together, and their ids go to the broker
only after the commit. With `reuse`, a point whose spec hash already has a
succeeded job of the team links to that job instead of running again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from api.services.bodies import validate_body
from api.services.comparison import BUDGET_METRICS, Run, compare
from api.services.datasets import check_dataset_access
from api.services.jobs import auto_queue_now, check_data_present, enqueue_group_after_commit
from api.services.names import check_summary_metrics
from api.services.tuned import tuning_report
from flatlab.presets import UnknownPreset, apply_preset
from flatlab.settings import Settings
from sam_core.spec import JobSpec
from sam_core.spec.benchmark import BenchmarkBody, BenchmarkInvalid, Point, expand
from sam_core.spec.ensemble import ensemble_groups
from store.benchmarks import (
    benchmark_jobs,
    count_by_status,
    create_benchmark,
    find_succeeded_jobs,
    get_benchmark,
    link_jobs,
    read_series,
    unfinished_job_ids,
)
from store.errors import NotFound, Unprocessable
from store.jobs import cancel_jobs, create_job
from store.models import TERMINAL_STATUSES, Benchmark, Job
from store.results import summary_keys

SERIES = (*BUDGET_METRICS, "grad_evals")


@dataclass(frozen=True)
class Submitted:
    benchmark: Benchmark
    created: list[Job]
    reused: int
    # What to send to the broker: (job ids, queue); a group of several trains as one
    # seed ensemble on one worker.
    groups: list[tuple[list[str], str]]
    # axis → the configurations (labels) it was skipped for, their block lacking its field
    skipped: dict[str, list[str]]


def read_body(request: dict[str, Any]) -> BenchmarkBody:
    """The request as a benchmark body, its preset (if named) filled in."""
    if request.get("preset"):
        try:
            request = apply_preset(request)
        except UnknownPreset as exc:
            raise NotFound(str(exc), resource="preset", id=request["preset"]) from None
    return validate_body(BenchmarkBody, request)


def submit_benchmark(
    *, session: Session, settings: Settings, team_id: str, request: dict[str, Any]
) -> Submitted:
    body = read_body(request)
    try:
        points = expand(body, max_jobs=settings.max_benchmark_jobs)
    except BenchmarkInvalid as exc:
        raise Unprocessable(str(exc), errors=exc.errors) from None
    check_dataset_access(session=session, team_id=team_id, specs=[p.spec for p in points])
    check_data_present(settings, [p.spec for p in points])
    auto_queue = auto_queue_now(session, settings)
    baseline = body.baseline or points[0].label
    benchmark = create_benchmark(
        session=session,
        team_id=team_id,
        body=body.model_dump(mode="json"),
        name=body.name,
        baseline=baseline,
        tags=body.tags,
    )
    earlier = _reusable(session, team_id, points) if body.reuse else {}
    created: list[Job] = []
    specs: list[JobSpec] = []
    links = []
    for point in points:
        job_id = earlier.pop(point.spec.hash(), None)  # pop: one point per reused job
        reused = job_id is not None
        if job_id is None:
            job = _create(session, settings, team_id, benchmark.id, point, auto_queue)
            created.append(job)
            specs.append(point.spec)
            job_id = job.id
        links.append((job_id, point.label, point.seed, reused))
    link_jobs(session=session, benchmark_id=benchmark.id, links=links)
    groups = [
        ([created[i].id for i in group], created[group[0]].queue)
        for group in ensemble_groups(specs, settings.ensemble_max_members)
    ]
    skipped: dict[str, list[str]] = {}
    for point in points:
        for axis in point.skipped:
            if point.label not in skipped.setdefault(axis, []):
                skipped[axis].append(point.label)
    return Submitted(
        benchmark=benchmark,
        created=created,
        reused=len(points) - len(created),
        groups=groups,
        skipped=skipped,
    )


def _reusable(session: Session, team_id: str, points: list[Point]) -> dict[str, str]:
    hashes = [p.spec.hash() for p in points]
    return find_succeeded_jobs(session=session, team_id=team_id, spec_hashes=hashes)


def _create(
    session: Session,
    settings: Settings,
    team_id: str,
    benchmark_id: str,
    point: Point,
    auto_queue: str,
) -> Job:
    job = create_job(
        session=session,
        team_id=team_id,
        spec=point.spec,
        max_attempts=settings.max_attempts,
        benchmark_id=benchmark_id,
        auto_queue=auto_queue,
    )
    job.label = point.label
    return job


def enqueue_jobs(
    celery: Celery, factory: sessionmaker[Session], groups: list[tuple[list[str], str]]
) -> None:
    """Send each group of job ids to its queue; run after the request's commit."""
    for job_ids, queue in groups:
        enqueue_group_after_commit(celery, factory, job_ids, queue)


def benchmark_report(
    *, session: Session, team_id: str, benchmark_id: str, metric: str, order: str
) -> dict[str, Any]:
    """Progress by status and the comparison of the benchmark's configurations."""
    benchmark = get_benchmark(session=session, benchmark_id=benchmark_id, team_id=team_id)
    rows = benchmark_jobs(session=session, benchmark_id=benchmark_id)
    done_ids = [job.id for _, job in rows if job.status == "succeeded"]
    series = read_series(session=session, job_ids=done_ids, names=SERIES)
    runs = [
        Run(job.id, link.label, link.seed, job.status, job.summary, series.get(job.id, {}))
        for link, job in rows
    ]
    counts = count_by_status(session=session, benchmark_id=benchmark_id)
    total = sum(counts.values())
    finished = sum(counts[s] for s in TERMINAL_STATUSES)
    out: dict[str, Any] = {
        "benchmark": benchmark,
        "jobs": rows,
        "progress": {
            "total": total,
            "by_status": counts,
            "fraction_done": finished / total if total else 1.0,
        },
        "comparison": compare(runs, baseline=benchmark.baseline, metric=metric, order=order),
    }
    if benchmark.body.get("mode") == "tuned":  # done only once the re-runs have run
        out["tuning"] = tuning_report(session, benchmark)
        if out["tuning"]["phase"] == "tuning":
            out["progress"]["fraction_done"] = 0.0
    return out


def cancel_unfinished(*, session: Session, team_id: str, benchmark_id: str) -> tuple[int, int, int]:
    """Cancel the benchmark's queued jobs and ask its running ones to stop.

    Returns `(cancelled, stopping, unfinished)`: queued jobs cancelled now,
    running jobs asked to stop by this call, and how many jobs were queued
    or running when it began.
    """
    get_benchmark(session=session, benchmark_id=benchmark_id, team_id=team_id)
    job_ids = unfinished_job_ids(session=session, benchmark_id=benchmark_id)
    cancelled, stopping = cancel_jobs(session=session, job_ids=job_ids)
    return cancelled, stopping, len(job_ids)


def check_rank_metric(*, session: Session, team_id: str, metric: str) -> None:
    """The summary metric a report ranks on must exist (else a 422 with the closest names)."""
    check_summary_metrics(
        [("metric", metric)], lambda: summary_keys(session=session, team_id=team_id)
    )
