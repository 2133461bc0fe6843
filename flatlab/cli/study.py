"""`flatlab study create|ls|show|watch|cancel`: Optuna-driven studies on the Python client."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from flatlab.cli.common import (
    JsonOpt,
    KeyOpt,
    UrlOpt,
    client,
    console,
    err_console,
    print_json,
    reports_errors,
)
from flatlab.client import StudyReport
from flatlab.client.specs import load_spec

app = typer.Typer(
    no_args_is_help=True,
    help="Studies: hyperparameter searches (Optuna) whose trials are jobs.",
)


@app.command("create")
@reports_errors
def study_create(
    body: Annotated[
        Path, typer.Argument(help="a study body (base, search_space, budget, …), YAML/JSON")
    ],
    url: UrlOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Submit a study; prints its id. The API asks Optuna for its trials."""
    with client(url, key) as fl:
        created = fl.submit_study(load_spec(body))
    if json:
        print_json(created.raw)
        return
    err_console.print(f"study {created.id}: optimizing {created.metric} ({created.direction})")
    print(created.id)


@app.command("ls")
@reports_errors
def study_ls(
    status: Annotated[
        str | None, typer.Option(help="running, succeeded, cancelled, failed")
    ] = None,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 50,
    url: UrlOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """The team's studies, newest first."""
    with client(url, key) as fl:
        items = list(fl.studies(limit=limit, status=status))
    if json:
        print_json([s.raw for s in items])
        return
    table = Table("id", "name", "status", "objective", "best", "trials", "created")
    for s in items:
        trials = ", ".join(f"{n} {state}" for state, n in s.trials_by_state.items() if n)
        best = "" if s.best_value is None else f"{s.best_value:.4g}"
        objective = f"{s.metric} ({s.direction})"
        table.add_row(s.id, s.name or "", s.status, objective, best, trials, str(s.created_at))
    console.print(table)


@app.command("show")
@reports_errors
def study_show(
    study_id: Annotated[str, typer.Argument(help="the study's id")],
    url: UrlOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Best so far, trials by state, and every trial with its job."""
    with client(url, key) as fl:
        report = fl.study(study_id)
    if json:
        print_json(report.raw)
        return
    _print_report(report)


@app.command("watch")
@reports_errors
def study_watch(
    study_id: Annotated[str, typer.Argument(help="the study's id")],
    timeout: Annotated[float | None, typer.Option(help="seconds before giving up (exit 6)")] = None,
    poll: Annotated[float, typer.Option(help="seconds between reads")] = 2.0,
    url: UrlOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Follow a study until it ends: a line per change of best so far and trial counts."""
    seen: list[str] = []

    def update(report: StudyReport) -> None:
        line = _summary_line(report)
        if not json and (not seen or seen[-1] != line):
            err_console.print(line)
            seen.append(line)

    with client(url, key) as fl:
        report = fl.wait_study(study_id, timeout=timeout, poll=poll, on_update=update)
    if json:
        print_json(report.raw)
    else:
        _print_report(report)


@app.command("cancel")
@reports_errors
def study_cancel(
    study_id: Annotated[str, typer.Argument(help="the study's id")],
    url: UrlOpt = None,
    key: KeyOpt = None,
    json: JsonOpt = False,
) -> None:
    """Stop a study: no more trials; its unfinished trial jobs are cancelled."""
    with client(url, key) as fl:
        answer = fl.cancel_study(study_id)
    if json:
        print_json(answer)
    else:
        console.print(
            f"study {study_id}: cancelled ({answer.get('cancelled', 0)} queued trials cancelled, "
            f"{answer.get('stopping', 0)} running ones stopping)"
        )


def _summary_line(report: StudyReport) -> str:
    counts = ", ".join(f"{n} {state}" for state, n in report.trials_by_state.items() if n)
    best = "none yet" if report.best_value is None else f"{report.best_value:.4g}"
    where = "" if report.best_trial is None else f" (trial {report.best_trial})"
    return f"study {report.id} {report.status}: best {report.metric} {best}{where}; {counts}"


def _print_report(report: StudyReport) -> None:
    console.print(_summary_line(report))
    if report.best_params:
        console.print("best: " + ", ".join(f"{k}={_fmt(v)}" for k, v in report.best_params.items()))
    if report.error:
        console.print(f"[red]{report.error}[/red]")
    paths = sorted({p for t in report.trials for p in (t.get("params") or {})})
    table = Table("trial", "state", "value", *paths, "job", "job status")
    for t in report.trials:
        value = "" if t.get("value") is None else f"{t['value']:.4g}"
        params = [_fmt((t.get("params") or {}).get(p)) for p in paths]
        table.add_row(str(t["number"]), t["state"], value, *params, t["job_id"], t["job_status"])
    console.print(table)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
