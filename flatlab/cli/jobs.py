"""`flatlab submit` and `flatlab jobs ls|show|cancel|rm|logs|metrics`, on the Python client."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from flatlab.cli.common import (
    Exit,
    JsonOpt,
    KeyOpt,
    UrlOpt,
    client,
    console,
    err_console,
    print_json,
    reports_errors,
)
from flatlab.cli.tables import comparison_table, job_lines, jobs_table, pick_metrics
from flatlab.client import Benchmark, Job

app = typer.Typer(no_args_is_help=True, help="Training jobs: list, show, cancel, follow, metrics.")

TimeoutOpt = Annotated[
    float | None, typer.Option(help="with --wait: seconds before giving up (exit 6)")
]


@reports_errors
def submit(
    spec: Annotated[Path, typer.Argument(help="a job spec or benchmark body, YAML or JSON")],
    wait: Annotated[bool, typer.Option("--wait", help="follow it until it ends")] = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Submit a job or a benchmark from a file; with --wait, exit 1 unless it succeeded."""
    with client(url, key) as fl:
        created = fl.submit(spec)
        kind = "benchmark" if isinstance(created, Benchmark) else "job"
        if not json:
            err_console.print(f"{kind} {created.id} submitted to {fl.url}")
        if not wait:
            if json:
                print_json(created.raw)
            else:
                print(created.id)
            return
        if isinstance(created, Job):
            job = fl.wait(created.id, timeout=timeout, progress=not json)
            _print_job(job, json)
            ok = job.status == "succeeded"
        else:
            report = fl.wait_benchmark(created.id, timeout=timeout, progress=not json)
            if json:
                print_json(report.raw)
            else:
                metrics = pick_metrics(report)
                console.print(comparison_table(report, metrics))
            ok = not report.failed_jobs
    if not ok:
        raise typer.Exit(int(Exit.FAILED))


def _print_job(job: Job, json: bool) -> None:
    if json:
        print_json(job.raw)
    else:
        for line in job_lines(job):
            console.print(line, highlight=False)


@app.command("ls")
@reports_errors
def jobs_ls(
    status: Annotated[str | None, typer.Option(help="queued, running, succeeded, …")] = None,
    optimizer: Annotated[str | None, typer.Option()] = None,
    model: Annotated[str | None, typer.Option()] = None,
    dataset: Annotated[str | None, typer.Option()] = None,
    tag: Annotated[str | None, typer.Option()] = None,
    benchmark: Annotated[str | None, typer.Option(help="a benchmark id")] = None,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 50,
    url: UrlOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """The team's jobs, newest first."""
    filters: dict[str, Any] = {"status": status, "optimizer": optimizer, "model": model}
    filters.update(dataset=dataset)
    filters.update(tag=tag, benchmark_id=benchmark)
    with client(url, key) as fl:
        jobs = list(fl.jobs(limit=limit, **filters))
    if json:
        print_json([j.raw for j in jobs])
    else:
        console.print(jobs_table(jobs))


@app.command("show")
@reports_errors
def jobs_show(
    job_id: Annotated[str, typer.Argument(help="the job's id")],
    url: UrlOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """A job: status, progress, failure reason, summary."""
    with client(url, key) as fl:
        _print_job(fl.job(job_id), json)


@app.command("cancel")
@reports_errors
def jobs_cancel(
    job_id: Annotated[str, typer.Argument(help="the job's id")],
    url: UrlOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Cancel a queued job now, or ask a running one to stop at its next step."""
    with client(url, key) as fl:
        job = fl.cancel(job_id)
    if json:
        print_json(job.raw)
    else:
        console.print(f"job {job.id}: {job.status}" + ("" if job.done else " (stopping)"))


@app.command("rm")
@reports_errors
def jobs_rm(
    job_id: Annotated[str, typer.Argument(help="the job's id")],
    url: UrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """Delete a finished job with its metric points and artifacts."""
    with client(url, key) as fl:
        fl.delete_job(job_id)
    console.print(f"deleted job {job_id}")


@app.command("logs")
@reports_errors
def jobs_logs(
    job_id: Annotated[str, typer.Argument(help="the job's id")],
    url: UrlOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """A job's events, status changes and metric points, followed live until it ends
    (--json: one JSON object per line)."""
    with client(url, key) as fl:
        for event in fl.events(job_id):
            if json:
                print_json_line({"event": event.event, "id": event.id, "data": event.data})
            elif event.event == "metric":
                d = event.data
                console.print(
                    f"step {d['step']:>7}  epoch {d['epoch']:<8.3g} {d['name']:<28} {d['value']}",
                    highlight=False,
                )
            else:
                d = event.data
                reason = d.get("failure_reason") or d.get("error") or ""
                fraction = (d.get("progress") or {}).get("fraction", 0.0)
                console.print(
                    f"[bold]{d.get('status')}[/bold]  {100 * fraction:.0f}%  {reason}".rstrip()
                )


def print_json_line(data: object) -> None:
    import json as _json

    sys.stdout.write(_json.dumps(data, default=str) + "\n")
    sys.stdout.flush()


@app.command("metrics")
@reports_errors
def jobs_metrics(
    job_id: Annotated[str, typer.Argument(help="the job's id")],
    names: Annotated[str | None, typer.Option(help="comma-separated: train_loss,test_acc")] = None,
    max_points: Annotated[
        int | None, typer.Option(help="downsample each series on the server")
    ] = None,
    csv: Annotated[Path | None, typer.Option(help="write the long table as CSV here")] = None,
    parquet: Annotated[Path | None, typer.Option(help="write the long table as Parquet")] = None,
    url: UrlOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """A job's metric series: the last value of each, or the whole series to a file."""
    wanted = [n.strip() for n in names.split(",") if n.strip()] if names else None
    with client(url, key) as fl:
        frame = fl.metrics(job_id, names=wanted, max_points=max_points)
    if csv:
        frame.to_csv(csv, index=False)
    if parquet:
        frame.to_parquet(parquet, index=False)
    if json:
        print_json(_records(frame))
        return
    if csv or parquet:
        err_console.print(f"{len(frame)} points written")
        return
    from rich.table import Table

    table = Table("metric", "points", "last step", "last value", "min", "max")
    for name, series in frame.groupby("name", sort=False):
        values = series["value"]
        last = series.iloc[-1]
        table.add_row(
            str(name),
            str(len(series)),
            str(last["step"]),
            f"{last['value']:.6g}",
            f"{values.min():.6g}",
            f"{values.max():.6g}",
        )
    console.print(table)


def _records(frame: object) -> list[dict[str, object]]:
    import pandas as pd

    assert isinstance(frame, pd.DataFrame)
    out = frame.astype(object).where(frame.notna(), None)
    out["time"] = [t.isoformat() if t is not None else None for t in out["time"]]
    return list(out.to_dict(orient="records"))
