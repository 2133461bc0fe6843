"""`flatlab bench create|ls|show|watch|compare|cancel`: benchmarks on the Python client."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

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
from flatlab.cli.tables import comparison_table, paired_table, pick_metrics
from flatlab.client import BenchmarkReport
from flatlab.client.specs import load_spec

app = typer.Typer(no_args_is_help=True, help="Benchmarks: grids of jobs over seeds, compared.")

MetricOpt = Annotated[
    str | None, typer.Option(help="summary metric to rank on (default final_test_acc)")
]
OrderOpt = Annotated[str | None, typer.Option(help="desc (higher is better, default) or asc")]


@app.command("create")
@reports_errors
def bench_create(
    grid: Annotated[Path, typer.Argument(help="a benchmark body (base, axes, seeds), YAML/JSON")],
    url: UrlOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Expand a grid into jobs and queue them; prints the benchmark's id."""
    with client(url, key) as fl:
        created = fl.submit_benchmark(load_spec(grid))
    if json:
        print_json(created.raw)
        return
    err_console.print(
        f"benchmark {created.id}: {created.jobs} jobs ({created.created} new, "
        f"{created.reused} reused) submitted to {fl.url}"
    )
    print(created.id)


@app.command("ls")
@reports_errors
def bench_ls(
    name: Annotated[str | None, typer.Option(help="exact name")] = None,
    tag: Annotated[str | None, typer.Option(help="with this tag")] = None,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 50,
    url: UrlOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """The team's benchmarks, newest first."""
    with client(url, key) as fl:
        items = list(fl.benchmarks(limit=limit, name=name, tag=tag))
    if json:
        print_json([b.raw for b in items])
        return
    table = Table("id", "name", "jobs", "baseline", "created")
    for b in items:
        table.add_row(b.id, b.name or "", str(b.jobs or ""), b.baseline or "", str(b.created_at))
    console.print(table)


@app.command("show")
@reports_errors
def bench_show(
    benchmark_id: Annotated[str, typer.Argument(help="the benchmark's id")],
    url: UrlOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """A benchmark's progress and jobs."""
    with client(url, key) as fl:
        report = fl.benchmark(benchmark_id)
    if json:
        print_json(report.raw)
        return
    progress = report.progress
    counts = ", ".join(f"{n} {s}" for s, n in (progress.get("by_status") or {}).items() if n)
    done = 100 * float(progress.get("fraction_done") or 0.0)
    console.print(f"benchmark {report.id} {report.name or ''}: {done:.0f}% done ({counts})")
    table = Table("job", "configuration", "seed", "status", "reused")
    for job in report.job_list:
        table.add_row(job.job_id, job.label, str(job.seed), job.status, "yes" if job.reused else "")
    console.print(table)


@app.command("watch")
@reports_errors
def bench_watch(
    benchmark_id: Annotated[str, typer.Argument(help="the benchmark's id")],
    timeout: Annotated[float | None, typer.Option(help="seconds before giving up (exit 6)")] = None,
    poll: Annotated[float, typer.Option(help="seconds between reads")] = 1.0,
    url: UrlOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Live progress bars, one per configuration, until every job ended; then the
    comparison. Exit 1 if a job failed or was cancelled."""
    with client(url, key) as fl:
        report = fl.wait_benchmark(benchmark_id, timeout=timeout, poll=poll, progress=not json)
    _show_comparison(report, (), json)
    if report.failed_jobs:
        raise typer.Exit(int(Exit.FAILED))


@app.command("compare")
@reports_errors
def bench_compare(
    benchmark_id: Annotated[str, typer.Argument(help="the benchmark's id")],
    metric: MetricOpt = None,
    order: OrderOpt = None,
    show: Annotated[
        str | None, typer.Option(help="comma-separated metrics to show (default: the usual)")
    ] = None,
    url: UrlOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Mean ± std [95% CI] per configuration over seeds, the winner on --metric marked ★,
    and paired tests (t-test, Wilcoxon) of each configuration against the baseline."""
    columns = [m.strip() for m in show.split(",") if m.strip()] if show else []
    with client(url, key) as fl:
        report = fl.benchmark(benchmark_id, metric=metric, order=order)
    _show_comparison(report, columns, json, ranked=report.comparison.get("metric") or "")


def _show_comparison(
    report: BenchmarkReport, wanted: tuple[str, ...] | list[str], json: bool, ranked: str = ""
) -> None:
    if json:
        print_json({"id": report.id, "name": report.name, "comparison": report.comparison})
        return
    metrics = pick_metrics(report, wanted)
    present = {
        m for c in report.comparison.get("configurations", {}).values() for m in c["metrics"]
    }
    if ranked in present and ranked not in [m[0] for m in metrics]:
        metrics = pick_metrics(report, [ranked]) + metrics
    console.print(comparison_table(report, metrics))
    if report.comparison.get("baseline"):
        console.print(paired_table(report, metrics))
    for job in report.failed_jobs:
        if job.status in ("failed", "cancelled", "pruned"):
            console.print(f"[red]{job.label} seed {job.seed}: {job.status}[/red]")


@app.command("cancel")
@reports_errors
def bench_cancel(
    benchmark_id: Annotated[str, typer.Argument(help="the benchmark's id")],
    url: UrlOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Cancel every unfinished job of a benchmark."""
    with client(url, key) as fl:
        answer = fl.cancel_benchmark(benchmark_id)
    if json:
        print_json(answer)
    else:
        console.print(f"benchmark {benchmark_id}: cancel requested")
