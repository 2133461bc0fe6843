"""The `flatlab` command: run the stack; submit, watch, compare and export the day's work.

Stack (`stack`): up, down, api, worker, reconcile. Operators (`database`,
`keys`): db upgrade, keys create|revoke|ls. Work, on the Python client
(`flatlab.client`): submit, jobs, bench, study, results, plot, demo. Exit codes are
listed in `flatlab.cli.common` and docs/cli.md.
"""

from __future__ import annotations

import typer

from flatlab.cli import bench, database, demo, jobs, keys, plot, results, stack, study

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="flatlab: training as a service for sharpness-aware optimization research.",
)
for command in (stack.up, stack.down, stack.api, stack.worker, stack.reconcile):
    app.command()(command)
app.command()(jobs.submit)
app.command()(results.results)
app.command()(demo.demo)
app.add_typer(jobs.app, name="jobs")
app.add_typer(bench.app, name="bench")
app.add_typer(study.app, name="study")
app.add_typer(plot.app, name="plot")
app.add_typer(database.app, name="db")
app.add_typer(keys.app, name="keys")

__all__ = ["app"]
