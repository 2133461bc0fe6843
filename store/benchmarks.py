"""Benchmarks: the row, the links to its jobs, progress, and what the comparison reads.

A benchmark's jobs are the `benchmark_jobs` rows (label and seed per job); a
job created for the benchmark also carries `jobs.benchmark_id`, while a job
reused from the team's history keeps the benchmark it was first run for.
Functions flush; the caller commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.errors import NotFound
from store.jobs import has_tag
from store.models import JOB_STATUSES, Benchmark, BenchmarkJob, Job, MetricPoint, utcnow
from store.pages import newest_first


def create_benchmark(
    *,
    session: Session,
    team_id: str,
    body: dict[str, Any],
    name: str | None,
    baseline: str | None,
    tags: list[str],
) -> Benchmark:
    benchmark = Benchmark(
        team_id=team_id, name=name, body=body, baseline=baseline, tags=tags, created_at=utcnow()
    )
    session.add(benchmark)
    session.flush()
    return benchmark


def get_benchmark(*, session: Session, benchmark_id: str, team_id: str) -> Benchmark:
    """The team's benchmark, or `NotFound` (another team's benchmark is not found either)."""
    benchmark = session.get(Benchmark, benchmark_id)
    if benchmark is None or benchmark.team_id != team_id:
        raise NotFound(f"no benchmark {benchmark_id!r}", resource="benchmark", id=benchmark_id)
    return benchmark


def link_jobs(
    *, session: Session, benchmark_id: str, links: Iterable[tuple[str, str, int, bool]]
) -> None:
    """Record `(job_id, label, seed, reused)` as jobs of the benchmark."""
    session.add_all(
        BenchmarkJob(benchmark_id=benchmark_id, job_id=j, label=lab, seed=s, reused=r)
        for j, lab, s, r in links
    )
    session.flush()


def find_succeeded_jobs(
    *, session: Session, team_id: str, spec_hashes: Sequence[str]
) -> dict[str, str]:
    """spec_hash → id of the team's newest succeeded job with that hash."""
    if not spec_hashes:
        return {}
    stmt = (
        select(Job.spec_hash, Job.id)
        .where(Job.team_id == team_id, Job.status == "succeeded")
        .where(Job.spec_hash.in_(sorted(set(spec_hashes))))
        .order_by(Job.finished_at.asc().nulls_first(), Job.id)
    )
    return {spec_hash: job_id for spec_hash, job_id in session.execute(stmt)}


def benchmark_jobs(*, session: Session, benchmark_id: str) -> list[tuple[BenchmarkJob, Job]]:
    """The benchmark's links and jobs, in the order the grid made them."""
    stmt = (
        select(BenchmarkJob, Job)
        .join(Job, Job.id == BenchmarkJob.job_id)
        .where(BenchmarkJob.benchmark_id == benchmark_id)
        .order_by(Job.created_at, Job.id)
    )
    return [(link, job) for link, job in session.execute(stmt).tuples()]


def count_by_status(*, session: Session, benchmark_id: str) -> dict[str, int]:
    stmt = (
        select(Job.status, func.count())
        .join(BenchmarkJob, BenchmarkJob.job_id == Job.id)
        .where(BenchmarkJob.benchmark_id == benchmark_id)
        .group_by(Job.status)
    )
    counts = dict.fromkeys(JOB_STATUSES, 0)
    counts.update({status: n for status, n in session.execute(stmt).tuples()})
    return counts


def read_series(
    *, session: Session, job_ids: Sequence[str], names: Sequence[str]
) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """job id → metric name → [(step, value)] in step order, for many jobs in one query."""
    out: dict[str, dict[str, list[tuple[int, float]]]] = {j: {} for j in job_ids}
    if not job_ids:
        return out
    stmt = (
        select(MetricPoint.job_id, MetricPoint.name, MetricPoint.step, MetricPoint.value)
        .where(MetricPoint.job_id.in_(list(job_ids)), MetricPoint.name.in_(list(names)))
        .order_by(MetricPoint.job_id, MetricPoint.name, MetricPoint.step)
    )
    for job_id, name, step, value in session.execute(stmt).tuples():
        if value is not None:
            out[job_id].setdefault(name, []).append((int(step), float(value)))
    return out


def list_benchmarks(
    *,
    session: Session,
    team_id: str,
    name: str | None = None,
    tag: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Benchmark], str | None]:
    """One page of the team's benchmarks, newest first (optionally by name and tag)."""
    stmt = select(Benchmark).where(Benchmark.team_id == team_id)
    if name is not None:
        stmt = stmt.where(Benchmark.name == name)
    if tag is not None:
        stmt = stmt.where(has_tag(session, Benchmark.tags, tag))
    return newest_first(session=session, stmt=stmt, model=Benchmark, limit=limit, cursor=cursor)


def status_counts(
    *, session: Session, benchmark_ids: Sequence[str]
) -> dict[str, dict[str, dict[str, int]]]:
    """benchmark id → {"by_status": {status: n}, "reused": {status: n}} over its linked jobs."""
    out = {
        b: {"by_status": dict.fromkeys(JOB_STATUSES, 0), "reused": dict.fromkeys(JOB_STATUSES, 0)}
        for b in benchmark_ids
    }
    if not benchmark_ids:
        return out
    stmt = (
        select(BenchmarkJob.benchmark_id, BenchmarkJob.reused, Job.status, func.count())
        .join(Job, Job.id == BenchmarkJob.job_id)
        .where(BenchmarkJob.benchmark_id.in_(list(benchmark_ids)))
        .group_by(BenchmarkJob.benchmark_id, BenchmarkJob.reused, Job.status)
    )
    for benchmark_id, reused, status, n in session.execute(stmt):
        out[benchmark_id]["by_status"][status] += int(n)
        if reused:
            out[benchmark_id]["reused"][status] += int(n)
    return out


def unfinished_job_ids(*, session: Session, benchmark_id: str) -> list[str]:
    """The benchmark's queued and running jobs."""
    stmt = (
        select(Job.id)
        .join(BenchmarkJob, BenchmarkJob.job_id == Job.id)
        .where(BenchmarkJob.benchmark_id == benchmark_id, Job.status.in_(("queued", "running")))
    )
    return list(session.scalars(stmt))
