"""The `flatlab` command: run the stack, the API or a worker; manage the database and keys; demo.

`flatlab up` is the whole service on one machine: it applies the migrations,
then starts the API (uvicorn) and one Celery worker as child processes,
embedded by default (SQLite and a filesystem broker under `./.flatlab/`) or
against `FLATLAB_DATABASE_URL` / `FLATLAB_BROKER_URL`. With `--detach` it
writes pid files under `<home>/run/` and returns once the API is ready and
the worker listens; `flatlab down` stops them (a running job is checkpointed
and re-queued first).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.table import Table

from flatlab.settings import Settings, get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])
db_app = typer.Typer(no_args_is_help=True, help="The database.")
keys_app = typer.Typer(no_args_is_help=True, help="Teams' API keys.")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
# Piped output (CI logs, `| tee`) gets rich's 80 columns; the demo's tables need more.
console = Console() if sys.stdout.isatty() else Console(width=132)

PROCESSES = ("api", "worker")
TERMINAL = ("succeeded", "failed", "cancelled")


# --- the local stack ---------------------------------------------------------


@app.command()
def up(
    port: Annotated[int, typer.Option(help="API port")] = 8000,
    host: Annotated[str, typer.Option(help="API address")] = "127.0.0.1",
    detach: Annotated[
        bool, typer.Option(help="return once ready; stop with `flatlab down`")
    ] = False,
    concurrency: Annotated[int, typer.Option(help="jobs the worker runs at once")] = 1,
    timeout: Annotated[float, typer.Option(help="seconds to wait for readiness")] = 120.0,
) -> None:
    """Start the API and one worker (migrations first)."""
    settings = get_settings()
    run_dir, log_dir = _run_dir(settings), settings.home.resolve() / "logs"
    if _live_pids(run_dir):
        _fail(f"flatlab is already running (pid files in {run_dir}); run `flatlab down` first")
    _upgrade(settings)
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "FLATLAB_HOME": str(settings.home.resolve())}
    queues = "gpu,cpu" if shutil.which("nvidia-smi") else "cpu"
    commands = {
        "api": ["-m", "uvicorn", "api.app:app", "--host", host, "--port", str(port)],
        "worker": ["-m", "flatlab.cli", "worker", "--queues", queues, "-c", str(concurrency)],
    }
    procs = {
        name: _spawn([sys.executable, *argv], env, log_dir / f"{name}.log")
        for name, argv in commands.items()
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    for name, proc in procs.items():
        (run_dir / f"{name}.pid").write_text(str(proc.pid))
    url = f"http://{host}:{port}"
    try:
        _wait_ready(url, procs, log_dir, timeout)
    except BaseException:
        _stop_all(run_dir)
        raise
    _print_where(settings, url, log_dir)
    if detach:
        return
    console.print("Press Ctrl-C to stop.")
    try:
        while all(p.poll() is None for p in procs.values()):
            time.sleep(0.5)
        console.print("[red]a process exited; stopping the others[/red]")
    except KeyboardInterrupt:
        pass
    finally:
        _stop_all(run_dir)


@app.command()
def down(
    grace: Annotated[float, typer.Option(help="seconds to let a job checkpoint")] = 60.0,
) -> None:
    """Stop what `flatlab up` started (the running job is checkpointed and re-queued)."""
    stopped = _stop_all(_run_dir(get_settings()), grace)
    console.print("stopped " + (", ".join(stopped) if stopped else "nothing: flatlab was not up"))


def _spawn(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    if log_path.exists():  # keep the previous run's log; readiness reads only this one
        log_path.replace(log_path.with_suffix(".log.1"))
    with open(log_path, "wb") as log:
        # A session of its own: `down` signals the whole group (a worker and its pool children).
        return subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait_ready(
    url: str, procs: dict[str, subprocess.Popen[bytes]], log_dir: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    api_ready = worker_ready = False
    while not (api_ready and worker_ready):
        for name, proc in procs.items():
            if proc.poll() is not None:
                tail = (log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                _fail(f"the {name} exited with code {proc.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            _fail(f"not ready after {timeout:.0f} s; see the logs in {log_dir}")
        api_ready = api_ready or _answers(f"{url}/readyz")
        worker_ready = worker_ready or " ready." in (log_dir / "worker.log").read_text(
            errors="replace"
        )
        time.sleep(0.3)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _print_where(settings: Settings, url: str, log_dir: Path) -> None:
    console.print(f"[bold green]flatlab is up[/bold green] at {url}  (API docs: {url}/docs)")
    console.print(f"  database  {_redact(settings.db_url)}")
    console.print(f"  broker    {_redact(settings.broker)}")
    console.print(f"  files     {settings.artifacts_dir}")
    console.print(f"  logs      {log_dir}")
    if not settings.auth_on:
        console.print("  auth      [yellow]off[/yellow] (embedded mode: anyone who can reach it)")
    console.print("  stop with `flatlab down`")


def _redact(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


def _run_dir(settings: Settings) -> Path:
    return settings.home.resolve() / "run"


def _live_pids(run_dir: Path) -> dict[str, int]:
    out = {}
    for name in PROCESSES:
        pid_file = run_dir / f"{name}.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().strip() or 0)
            if pid and _alive(pid):
                out[name] = pid
            else:
                pid_file.unlink()
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")  # a recycled pid is not ours
    if not cmdline.exists():
        return True
    text = cmdline.read_bytes()
    return b"flatlab" in text or b"uvicorn" in text or b"celery" in text


def _stop_all(run_dir: Path, grace: float = 60.0) -> list[str]:
    """SIGTERM each process group, wait up to `grace` seconds, then SIGKILL what is left."""
    pids = _live_pids(run_dir)
    for pid in pids.values():
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_group_alive(p) for p in pids.values()):
        time.sleep(0.2)
    for pid in pids.values():
        _signal_group(pid, signal.SIGKILL)
    for name in pids:
        (run_dir / f"{name}.pid").unlink(missing_ok=True)
    return list(pids)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    _reap(pid)


def _group_alive(pgid: int) -> bool:
    _reap(pgid)
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


# --- the parts ---------------------------------------------------------------


@app.command()
def api(
    port: Annotated[int | None, typer.Option(help="default FLATLAB_API_PORT")] = None,
    host: Annotated[str | None, typer.Option(help="default FLATLAB_API_HOST")] = None,
) -> None:
    """Serve the REST API (uvicorn) in this process."""
    import uvicorn

    settings = get_settings()
    uvicorn.run("api.app:app", host=host or settings.api_host, port=port or settings.api_port)


@app.command()
def worker(
    queues: Annotated[str | None, typer.Option(help="default: gpu with --gpu, else cpu")] = None,
    gpu: Annotated[int | None, typer.Option(help="the one GPU this worker uses")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="jobs at once")] = 1,
    pool: Annotated[str, typer.Option(help="prefork (default) or solo")] = "prefork",
    loglevel: Annotated[str, typer.Option()] = "INFO",
) -> None:
    """Run a Celery worker: one process per GPU, a fresh child for every job."""
    env = dict(os.environ)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)  # set before any CUDA use, in every child
    if concurrency > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // concurrency))
    queues = queues or ("gpu" if gpu is not None else "cpu")
    name = f"{'gpu' + str(gpu) if gpu is not None else 'cpu'}-{os.getpid()}@%h"
    argv = [sys.executable, "-m", "celery", "-A", "worker.app", "worker"]
    argv += ["--pool", pool, "--concurrency", str(concurrency), "--queues", queues]
    argv += ["--hostname", name, "--loglevel", loglevel, "--max-tasks-per-child", "1"]
    argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    os.execve(sys.executable, argv, env)


@app.command()
def reconcile(
    once: Annotated[bool, typer.Option(help="one pass, then exit")] = False,
) -> None:
    """Re-queue jobs whose worker was lost and re-send queued jobs the broker lost."""
    from flatlab.broker import make_celery
    from store.db import make_engine, make_session_factory
    from worker.reconciler import reconcile_once

    settings = get_settings()
    factory = make_session_factory(make_engine(settings.db_url))
    celery = make_celery(settings)
    while True:
        report = reconcile_once(factory, settings, celery)
        console.print(
            f"requeued {len(report.requeued)}, failed {len(report.failed)}, "
            f"re-sent {len(report.resent)}"
        )
        if once:
            return
        time.sleep(settings.reconcile_seconds)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration to the configured database."""
    settings = get_settings()
    _upgrade(settings)
    console.print(f"database at the newest revision: {_redact(settings.db_url)}")


def _upgrade(settings: Settings) -> None:
    import migrations

    migrations.upgrade(settings.db_url)


@keys_app.command("create")
def keys_create(
    team: Annotated[str, typer.Option(help="team name (created if new)")],
    read_only: Annotated[bool, typer.Option(help="may read, may not submit")] = False,
) -> None:
    """Create an API key; the key is printed once, on the last line."""
    from store.keys import create_api_key, get_or_create_team

    with _session() as session:
        team_row = get_or_create_team(session=session, name=team)
        created = create_api_key(session=session, team_id=team_row.id, read_only=read_only)
    kind = "read-only key" if read_only else "key"
    console.print(
        f"{kind} {created.prefix}… for team {team!r}; store it now, it is not shown again:"
    )
    print(created.key)


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="the key, or its id")]) -> None:
    """Revoke an API key."""
    from store.errors import NotFound
    from store.keys import revoke_api_key

    try:
        with _session() as session:
            row = revoke_api_key(session=session, key=key)
    except NotFound as exc:
        _fail(exc.message)
    console.print(f"revoked key {row.prefix}…")


def _session() -> Any:
    from store.db import make_engine, make_session_factory, session_scope

    return session_scope(make_session_factory(make_engine(get_settings().db_url)))


# --- demo --------------------------------------------------------------------


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


DEMO_BASE = {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}


@app.command()
def demo(
    url: Annotated[str, typer.Option(help="the flatlab API")] = "http://127.0.0.1:8000",
    key: Annotated[str | None, typer.Option(envvar="FLATLAB_API_KEY", help="API key")] = None,
    epochs: Annotated[int, typer.Option()] = 8,
    seeds: Annotated[int, typer.Option()] = 2,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the benchmark")] = 900.0,
) -> None:
    """Run one benchmark, SAM vs SGD on digits over seeds, and print its comparison."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        response = client.post("/v1/benchmarks", json=demo_benchmark(epochs, seeds))
        if response.status_code != 202:
            _fail(f"submitting failed: {response.status_code} {response.text}")
        benchmark = response.json()
        console.print(
            f"benchmark {benchmark['id']}: {benchmark['jobs']} jobs submitted to {url}; waiting…"
        )
        report = _wait_for_benchmark(client, benchmark["id"], timeout)
    console.print(comparison_table(report))
    console.print(paired_table(report))
    failed = [job for job in report["job_list"] if job["status"] != "succeeded"]
    for job in failed:
        console.print(f"[red]{job['label']} seed {job['seed']}: {job['status']}[/red]")
    if failed:
        raise typer.Exit(1)


def _wait_for_benchmark(client: httpx.Client, benchmark_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with console.status("") as status:
        while True:
            report = client.get(f"/v1/benchmarks/{benchmark_id}").raise_for_status().json()
            progress = report["progress"]
            counts = ", ".join(f"{n} {s}" for s, n in progress["by_status"].items() if n)
            status.update(f"{100 * progress['fraction_done']:.0f}% done ({counts})")
            if progress["fraction_done"] >= 1.0:
                return dict(report)
            if time.monotonic() > deadline:
                _fail(f"benchmark not finished after {timeout:.0f} s: {counts}")
            time.sleep(1.0)


DEMO_METRICS = (
    ("final_test_acc", "test acc", "{:.3f}"),
    ("gen_gap_acc", "gen gap (acc)", "{:+.3f}"),
    ("hessian_trace", "tr H", "{:.1f}"),
    ("hessian_top_eigenvalue", "λ_max", "{:.2f}"),
    ("train_seconds", "train s", "{:.1f}"),
)


def comparison_table(report: dict[str, Any]) -> Table:
    """Per configuration: mean ± std over seeds, and the 95% CI below, of each metric."""
    configs = report["comparison"]["configurations"]
    table = Table(title=f"{report['name']}: mean ± std [95% CI] over seeds")
    table.add_column("configuration")
    table.add_column("seeds", justify="right")
    for _, heading, _ in DEMO_METRICS:
        table.add_column(heading, justify="right")
    for label, stats in configs.items():
        cells = [_stat(stats["metrics"].get(name), fmt) for name, _, fmt in DEMO_METRICS]
        table.add_row(label, f"{stats['succeeded']}/{stats['runs']}", *cells)
    return table


def paired_table(report: dict[str, Any]) -> Table:
    """Each configuration against the baseline, paired by seed: mean difference and p-value."""
    comparison = report["comparison"]
    table = Table(title=f"paired t-test against the baseline {comparison['baseline']} (by seed)")
    table.add_column("configuration")
    table.add_column("metric")
    table.add_column("pairs", justify="right")
    table.add_column("mean diff", justify="right")
    table.add_column("p-value", justify="right")
    for label, tests in comparison["paired_tests"].items():
        for name, heading, _ in DEMO_METRICS:
            test = tests.get(name)
            if test is None:
                continue
            diff, p_value = _num(test["mean_diff"], "{:+.3g}"), _num(test["p_value"], "{:.3f}")
            table.add_row(label, heading, str(test["n_pairs"]), diff, p_value)
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


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else fmt.format(value)


def _fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


if __name__ == "__main__":
    app()
