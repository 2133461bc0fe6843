"""Rich tables of jobs and of a benchmark's comparison, shared by `jobs`, `bench` and `demo`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.table import Table

from flatlab.client import BenchmarkReport, Job

# (summary key, heading, format) of the columns a comparison shows when they exist.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("final_test_acc", "test acc", "{:.3f}"),
    ("final_test_loss", "test loss", "{:.3f}"),
    ("gen_gap_acc", "gen gap (acc)", "{:+.3f}"),
    ("hessian_trace", "tr H", "{:.1f}"),
    ("hessian_top_eigenvalue", "λ_max", "{:.2f}"),
    ("train_seconds", "train s", "{:.1f}"),
)
STATUS_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "cancelled": "yellow",
    "pruned": "magenta",
    "running": "cyan",
}


def jobs_table(jobs: Iterable[Job]) -> Table:
    table = Table("id", "status", "label", "optimizer", "model", "dataset", "seed", "progress")
    for job in jobs:
        style = STATUS_STYLE.get(job.status, "")
        status = f"[{style}]{job.status}[/{style}]" if style else job.status
        progress = f"{100 * job.progress.fraction:.0f}%"
        label = job.label or job.name or ""
        table.add_row(
            job.id, status, label, job.optimizer, job.model, job.dataset, str(job.seed), progress
        )
    return table


def job_lines(job: Job) -> list[str]:
    """A job in a few lines: what it is, where it stands, why it failed, its summary."""
    lines = [
        f"job {job.id}  [bold]{job.status}[/bold]" + (f"  ({job.label})" if job.label else ""),
        f"  {job.optimizer} · {job.model} · {job.dataset} · seed {job.seed} · queue {job.queue}",
        f"  step {job.progress.step}"
        + (f"/{job.progress.total_steps}" if job.progress.total_steps else "")
        + f"  epoch {job.progress.epoch:g}  attempts {job.attempts}",
    ]
    if job.failure_reason or job.error:
        lines.append(f"  [red]{job.failure_reason or ''}[/red] {job.error or ''}".rstrip())
    for key, value in sorted((job.summary or {}).items()):
        lines.append(f"  {key:<28} {_num(value, '{:.6g}')}")
    return lines


def pick_metrics(report: BenchmarkReport, wanted: Sequence[str] = ()) -> list[tuple[str, str, str]]:
    """The columns to show: `wanted` in order, else the standard ones the benchmark has."""
    known = {name: (name, heading, fmt) for name, heading, fmt in METRICS}
    if wanted:
        return [known.get(name, (name, name, "{:.4g}")) for name in wanted]
    present = {
        m for c in report.comparison.get("configurations", {}).values() for m in c["metrics"]
    }
    return [m for m in METRICS if m[0] in present]


def comparison_table(report: BenchmarkReport, metrics: Sequence[tuple[str, str, str]]) -> Table:
    """Per configuration: mean ± std over seeds and the 95% CI below, the winner on the
    ranking metric marked ★ and the baseline marked (baseline)."""
    comparison = report.comparison
    ranking = [r for r in comparison.get("ranking", []) if r.get("rank") is not None]
    winner = ranking[0]["label"] if ranking else None
    table = Table(
        title=f"{report.name or report.id}: mean ± std [95% CI] over seeds; "
        f"★ best {comparison.get('metric')} ({comparison.get('order')})"
    )
    table.add_column("configuration")
    table.add_column("seeds", justify="right")
    for _, heading, _ in metrics:
        table.add_column(heading, justify="right")
    for label, stats in comparison.get("configurations", {}).items():
        name = label + (" ★" if label == winner else "")
        name += " (baseline)" if label == comparison.get("baseline") else ""
        cells = [_stat(stats["metrics"].get(m), fmt) for m, _, fmt in metrics]
        table.add_row(name, f"{stats['succeeded']}/{stats['runs']}", *cells)
    return table


def paired_table(report: BenchmarkReport, metrics: Sequence[tuple[str, str, str]]) -> Table:
    """Each configuration against the baseline, paired by seed: mean difference, p-values."""
    comparison = report.comparison
    table = Table(title=f"paired tests against the baseline {comparison.get('baseline')} (by seed)")
    for heading in ("configuration", "metric", "pairs", "mean diff", "t-test p", "Wilcoxon p"):
        table.add_column(
            heading, justify="left" if heading in ("configuration", "metric") else "right"
        )
    for label, tests in comparison.get("paired_tests", {}).items():
        for name, heading, _ in metrics:
            test = tests.get(name)
            if test is None:
                continue
            table.add_row(
                label,
                heading,
                str(test["n_pairs"]),
                _num(test["mean_diff"], "{:+.3g}"),
                _num(test["p_value"], "{:.3f}"),
                _num(test.get("wilcoxon_p_value"), "{:.3f}"),
            )
    return table


def _stat(stats: dict[str, Any] | None, fmt: str) -> str:
    if not stats or stats.get("mean") is None:
        return "–"
    text = fmt.format(stats["mean"])
    if stats.get("std") is not None:
        text += " ± " + fmt.format(stats["std"]).lstrip("+")
    if stats.get("ci_low") is not None:
        text += f"\n[{fmt.format(stats['ci_low'])}, {fmt.format(stats['ci_high'])}]"
    return text


def _num(value: Any, fmt: str) -> str:
    return "–" if value is None or not isinstance(value, int | float) else fmt.format(value)
