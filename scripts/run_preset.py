"""Run a seed-paper preset in-process and print its comparison.

    python scripts/run_preset.py NAME [--seeds 0 1 2] [--workers 2] [--json out.json]

The preset is filled in (`flatlab.presets.apply_preset`), expanded into one job spec
per grid point (`sam_core.spec.benchmark.expand`, the service's own validation), and
every point is trained with `sam_core.training.train` on this machine: no service,
database or worker. The comparison is `api.services.comparison.compare`, the very
statistics `GET /v1/benchmarks/{id}` returns, over the same summaries and series a
worker would store. Printed: mean ± sample std over seeds per configuration of the
metrics the preset's claim is about, paired differences against the baseline, and
for presets with a series (Khanh et al.: the gradient norm) its value over iterations.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.services.comparison import Run, compare
from flatlab.presets import PRESETS, apply_preset
from sam_core.spec import JobSpec
from sam_core.spec.benchmark import BenchmarkBody, Point, expand


def run_point(label: str, seed: int, spec_json: dict[str, Any]) -> dict[str, Any]:
    """Train one point; its status, summary and every logged metric as (step, value)."""
    import torch

    from sam_core.training import train
    from sam_core.training.events import Metrics

    torch.set_num_threads(1)
    series: dict[str, list[tuple[int, float]]] = {}

    def on_event(event: Any) -> None:
        if isinstance(event, Metrics):
            for name, value in event.values.items():
                series.setdefault(name, []).append((event.step, float(value)))

    spec = JobSpec.model_validate(spec_json)
    finished = train(spec, on_event)
    status = "succeeded" if finished.status == "completed" else finished.status
    return {
        "label": label,
        "seed": seed,
        "status": status,
        "message": finished.message,
        "summary": finished.summary,
        "series": series,
    }


def run_points(points: list[Point], workers: int) -> list[dict[str, Any]]:
    jobs = [(p.label, p.seed, p.spec.model_dump(mode="json")) for p in points]
    if workers <= 1:
        return [run_point(*job) for job in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_point, *job) for job in jobs]
        return [f.result() for f in futures]


def fmt(stats: dict[str, Any] | None) -> str:
    if not stats or stats.get("mean") is None:
        return "—"
    mean, std = stats["mean"], stats.get("std")
    return f"{_num(mean)} ± {_num(std)}" if std is not None else _num(mean)


def _num(x: float) -> str:
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{x:.4g}"
    return f"{x:.3e}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def series_table(runs: list[Run], name: str, marks: int = 5) -> str:
    """Mean ± std over seeds of `name` at a few evaluation steps, and its minimum."""
    by_label: dict[str, list[Run]] = {}
    for run in runs:
        if run.done and run.series.get(name):
            by_label.setdefault(run.label, []).append(run)
    if not by_label:
        return f"(no `{name}` series)"
    steps = sorted({s for r in runs for s, _ in r.series.get(name, [])})
    picks = sorted({steps[round(i * (len(steps) - 1) / (marks - 1))] for i in range(marks)})
    headers = ["configuration", *(f"step {s}" for s in picks), "min over steps"]
    rows = []
    for label, group in by_label.items():
        cells = [label]
        for step in picks:
            values = [v for r in group for s, v in r.series[name] if s == step]
            cells.append(_mean_std(values))
        cells.append(_mean_std([min(v for _, v in r.series[name]) for r in group]))
        rows.append(cells)
    return table(headers, rows)


def _mean_std(values: list[float]) -> str:
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return "—"
    mean = sum(values) / len(values)
    if len(values) == 1:
        return _num(mean)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{_num(mean)} ± {_num(std)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=list(PRESETS))
    parser.add_argument("--seeds", type=int, nargs="+", help="override the preset's seeds")
    parser.add_argument("--workers", type=int, default=1, help="processes (one thread each)")
    parser.add_argument("--json", type=Path, help="write the runs and the comparison here")
    args = parser.parse_args(argv)

    preset = PRESETS[args.name]
    request: dict[str, Any] = {"preset": args.name}
    if args.seeds:
        request["seeds"] = args.seeds
    body = BenchmarkBody.model_validate(apply_preset(request))
    points = expand(body)
    print(f"# {preset.name}: {preset.title}\n# {preset.reference}")
    configurations = len({p.label for p in points})
    print(f"# {len(points)} jobs, {configurations} configurations, seeds {body.seeds}")
    started = time.perf_counter()
    results = run_points(points, max(1, args.workers))
    elapsed = time.perf_counter() - started
    runs = [
        Run(
            job_id=f"{r['label']}#{r['seed']}",
            label=r["label"],
            seed=r["seed"],
            status=r["status"],
            summary=r["summary"],
            series={k: [tuple(p) for p in v] for k, v in r["series"].items()},
        )
        for r in results
    ]
    for r in results:
        if r["status"] != "succeeded":
            print(f"! {r['label']} seed {r['seed']}: {r['status']} {r['message']}")
    metric = preset.metrics[0] if preset.metrics else "final_test_loss"
    comparison = compare(runs, baseline=body.baseline, metric=metric, order="asc")
    configs = comparison["configurations"]
    print(f"\nmean ± std over seeds ({elapsed:.0f} s on {os.cpu_count()} CPUs):\n")
    metrics = preset.metrics
    headers = ["configuration", "ok", *metrics]
    rows = [
        [label, f"{c['succeeded']}/{c['runs']}", *(fmt(c["metrics"].get(m)) for m in metrics)]
        for label, c in configs.items()
    ]
    print(table(headers, rows))
    if body.baseline and comparison["paired_tests"]:
        print(f"\npaired by seed against {body.baseline} (mean diff, paired t p-value):\n")
        rows = []
        for label, tests in comparison["paired_tests"].items():
            cells = [label]
            for m in preset.metrics:
                t = tests.get(m) or {}
                diff, p = t.get("mean_diff"), t.get("p_value")
                cells.append("—" if diff is None else f"{_num(diff)} (p={_num(p) if p else '—'})")
            rows.append(cells)
        print(table(["configuration", *preset.metrics], rows))
    for name in preset.series:
        print(f"\n`{name}` over iterations (mean ± std over seeds):\n")
        print(series_table(runs, name))
    correlations = [
        c for c in comparison["flatness_vs_generalization"] if c["measure"] in preset.metrics
    ]
    if correlations:
        print("\nKendall τ-b, sharpness vs generalization gap, over all runs:\n")
        rows = [
            [c["measure"], c["gap"], str(c["n"]), _num(c["tau"]), _num(c["p_value"])]
            for c in correlations
            if c["tau"] is not None
        ]
        print(table(["measure", "gap", "n", "τ", "p"], rows))
    if args.json:
        args.json.write_text(json.dumps({"runs": results, "comparison": comparison}, default=str))
    failed = [r for r in results if r["status"] != "succeeded"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
