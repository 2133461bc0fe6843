"""Waiting for a job or a benchmark to end, with rich progress bars on stderr.

A job is followed through its server-sent events (a `status` event carries
`progress.fraction` = step / total_steps); a benchmark is polled, one bar per
configuration counting its ended jobs.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from flatlab.client.errors import JobFailed
from flatlab.client.models import TERMINAL, BenchmarkReport, Job

if TYPE_CHECKING:
    from flatlab.client.client import Client


def _bars(show: bool, *count: bool) -> Progress:
    columns = [TextColumn("{task.description}"), BarColumn()]
    columns += [MofNCompleteColumn()] if count else [TextColumn("{task.percentage:>3.0f}%")]
    columns += [TextColumn("{task.fields[state]}"), TimeElapsedColumn()]
    return Progress(*columns, console=Console(stderr=True), disable=not show, transient=False)


def wait_job(
    client: Client, job_id: str, timeout: float | None, show: bool, raise_on_failure: bool
) -> Job:
    """The job once ended; its events drive the bar. `TimeoutError` after `timeout` s."""
    deadline = None if timeout is None else time.monotonic() + timeout
    job = client.job(job_id)
    with _bars(show) as bars:
        task = bars.add_task(job.label or job.name or job_id, total=1.0, state=job.status)
        while not job.done:
            with contextlib.closing(client.events(job_id, keepalive=True)) as events:
                for event in events:
                    if event.event == "status" and isinstance(event.data, dict):
                        status = event.data.get("status", "")
                        fraction = (event.data.get("progress") or {}).get("fraction") or 0.0
                        bars.update(task, completed=float(fraction), state=status)
                    if deadline is not None and time.monotonic() > deadline:
                        raise TimeoutError(f"job {job_id} did not end within {timeout:g} s")
            job = client.job(job_id)  # the stream ends when the job has ended
        completed = 1.0 if job.status == "succeeded" else job.progress.fraction
        bars.update(task, completed=completed, state=job.status)
    if raise_on_failure and job.status != "succeeded":
        reason = job.error or job.failure_reason or job.status
        raise JobFailed(f"job {job_id} {job.status}: {reason}", job)
    return job


def wait_benchmark(
    client: Client,
    benchmark_id: str,
    timeout: float | None,
    show: bool,
    poll: float,
    raise_on_failure: bool,
) -> BenchmarkReport:
    """The benchmark once every job ended; a bar per configuration, jobs ended of total."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with _bars(show, True) as bars:
        tasks: dict[str, TaskID] = {}
        while True:
            report = client.benchmark(benchmark_id)
            for label, jobs in _by_label(report).items():
                ended = sum(1 for status in jobs if status in TERMINAL)
                counts = Counter(jobs)
                state = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                if label not in tasks:
                    tasks[label] = bars.add_task(label, total=len(jobs), state=state)
                bars.update(tasks[label], completed=ended, total=len(jobs), state=state)
            if report.done:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"benchmark {benchmark_id} did not end within {timeout:g} s")
            time.sleep(poll)
    if raise_on_failure and report.failed_jobs:
        bad = ", ".join(f"{j.label} seed {j.seed}: {j.status}" for j in report.failed_jobs)
        raise JobFailed(f"benchmark {benchmark_id}: {bad}", report)
    return report


def _by_label(report: BenchmarkReport) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for job in report.job_list:
        out.setdefault(job.label, []).append(job.status)
    return out
