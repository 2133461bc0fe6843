"""`flatlab plot job|bench`: plots rendered by the API (matplotlib), saved as PNG or SVG."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flatlab.cli.common import Exit, KeyOpt, UrlOpt, client, console, fail, reports_errors
from flatlab.client import BENCHMARK_PLOTS, JOB_PLOTS

app = typer.Typer(no_args_is_help=True, help="Plots as PNG or SVG, rendered by the API.")

OutOpt = Annotated[
    Path | None, typer.Option("--out", "-o", help="file to write; its suffix picks the format")
]
FormatOpt = Annotated[str | None, typer.Option(help="png or svg (default: from --out, else png)")]


def _target(default_stem: str, out: Path | None, format: str | None) -> tuple[Path, str]:
    if format is not None and format not in ("png", "svg"):
        fail(f"--format must be png or svg, not {format!r}", code=Exit.USAGE)
    if out is not None and out.suffix.lower() in (".png", ".svg"):
        chosen = format or out.suffix.lower().lstrip(".")
        if format and out.suffix.lower() != f".{format}":
            fail(f"--out {out} does not match --format {format}", code=Exit.USAGE)
        return out, chosen
    chosen = format or "png"
    return (out or Path(default_stem)).with_suffix(f".{chosen}"), chosen


@app.command("job")
@reports_errors
def plot_job(
    job_id: Annotated[str, typer.Argument(help="the job's id")],
    kind: Annotated[str, typer.Argument(help=", ".join(JOB_PLOTS))] = "curves",
    out: OutOpt = None,
    format: FormatOpt = None,
    url: UrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """A job's learning curves, measures over steps, loss landscapes or Hessian density."""
    if kind not in JOB_PLOTS:
        fail(f"no job plot {kind!r}; one of: {', '.join(JOB_PLOTS)}", code=Exit.USAGE)
    path, chosen = _target(f"{job_id}-{kind}", out, format)
    with client(url, key) as fl:
        fl.plot_job(job_id, kind, format=chosen, path=path)
    console.print(str(path))


@app.command("bench")
@reports_errors
def plot_bench(
    benchmark_id: Annotated[str, typer.Argument(help="the benchmark's id")],
    kind: Annotated[str, typer.Argument(help=", ".join(BENCHMARK_PLOTS))] = "comparison",
    metric: Annotated[str | None, typer.Option(help="summary metric to plot")] = None,
    out: OutOpt = None,
    format: FormatOpt = None,
    url: UrlOpt = None,
    key: KeyOpt = None,
) -> None:
    """A benchmark's comparison (mean with 95% CI per configuration) or the
    sharpness-vs-generalization-gap scatter with Kendall τ."""
    if kind not in BENCHMARK_PLOTS:
        fail(f"no benchmark plot {kind!r}; one of: {', '.join(BENCHMARK_PLOTS)}", code=Exit.USAGE)
    path, chosen = _target(f"{benchmark_id}-{kind}", out, format)
    with client(url, key) as fl:
        fl.plot_benchmark(benchmark_id, kind, metric=metric, format=chosen, path=path)
    console.print(str(path))
