"""`flatlab demo`: one small benchmark, SAM vs SGD on digits over seeds, printed as tables.

By default it talks to the stack `flatlab up` started from this folder (the URL
`up` recorded under `<home>/run/`), so the demo always follows `up`'s port.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from flatlab.cli.common import Exit, KeyOpt, UrlOpt, client, console, reports_errors
from flatlab.cli.tables import comparison_table, paired_table, pick_metrics

DEMO_BASE = {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}
DEMO_METRICS = (
    "final_test_acc",
    "gen_gap_acc",
    "hessian_trace",
    "hessian_top_eigenvalue",
    "train_seconds",
)


def demo_benchmark(epochs: int, seeds: int) -> dict[str, Any]:
    """One small benchmark: SAM vs SGD on digits, an MLP, a few epochs, sharpness at the end."""
    return {
        "name": "demo: SAM vs SGD on digits",
        "tags": ["demo"],
        "base": {
            "model": {"name": "mlp", "hidden": [64]},
            "data": {"name": "digits", "batch_size": 64},
            "optimizer": {"name": "sgd"},
            "training": {"epochs": epochs, "device": "cpu", "log_every_steps": 5},
            "measure": {
                "every_epochs": epochs,
                "num_examples": 512,
                "sharpness": [
                    {"name": "hessian_top_eigenvalue", "max_iter": 20},
                    {"name": "hessian_trace", "probes": 20},
                ],
            },
            "limits": {"timeout_s": 600},
        },
        "axes": {
            "optimizer": [
                {"name": "sgd", "label": "SGD", "base": DEMO_BASE},
                {"name": "sam", "label": "SAM", "rho": 0.05, "base": DEMO_BASE},
            ]
        },
        "seeds": list(range(seeds)),
        "baseline": "SGD",
    }


@reports_errors
def demo(
    url: UrlOpt = None,
    key: KeyOpt = None,
    epochs: Annotated[int, typer.Option()] = 8,
    seeds: Annotated[int, typer.Option()] = 2,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the benchmark")] = 900.0,
) -> None:
    """Run one benchmark, SAM vs SGD on digits over seeds, and print its comparison."""
    with client(url, key) as fl:
        created = fl.submit_benchmark(demo_benchmark(epochs, seeds))
        console.print(f"benchmark {created.id}: {created.jobs} jobs submitted to {fl.url}")
        report = fl.wait_benchmark(created.id, timeout=timeout)
    metrics = pick_metrics(report, DEMO_METRICS)
    console.print(comparison_table(report, metrics))
    console.print(paired_table(report, metrics))
    for job in report.failed_jobs:
        console.print(f"[red]{job.label} seed {job.seed}: {job.status}[/red]")
    if report.failed_jobs:
        raise typer.Exit(int(Exit.FAILED))
