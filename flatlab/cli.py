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
console = Console()

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


def demo_spec(optimizer: str, seed: int, epochs: int) -> dict[str, Any]:
    """A small SAM-vs-SGD job on digits: an MLP, a few epochs, sharpness at the end."""
    rule: dict[str, Any] = {"name": optimizer, "label": optimizer.upper()}
    if optimizer != "sgd":
        rule["rho"] = 0.05
    rule["base"] = {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}
    return {
        "name": f"demo-{optimizer}-seed{seed}",
        "tags": ["demo"],
        "model": {"name": "mlp", "hidden": [64]},
        "data": {"name": "digits", "batch_size": 64},
        "optimizer": rule,
        "training": {"epochs": epochs, "seed": seed, "device": "cpu", "log_every_steps": 5},
        "measure": {
            "every_epochs": epochs,
            "num_examples": 512,
            "sharpness": [
                {"name": "hessian_top_eigenvalue", "max_iter": 20},
                {"name": "hessian_trace", "probes": 20},
            ],
        },
        "limits": {"timeout_s": 600},
    }


@app.command()
def demo(
    url: Annotated[str, typer.Option(help="the flatlab API")] = "http://127.0.0.1:8000",
    key: Annotated[str | None, typer.Option(envvar="FLATLAB_API_KEY", help="API key")] = None,
    epochs: Annotated[int, typer.Option()] = 8,
    seeds: Annotated[int, typer.Option()] = 2,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the jobs")] = 900.0,
) -> None:
    """Submit SAM vs SGD on digits (small MLP, a few epochs, several seeds) and compare."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        ids = []
        for optimizer in ("sgd", "sam"):
            for seed in range(seeds):
                response = client.post("/v1/jobs", json=demo_spec(optimizer, seed, epochs))
                if response.status_code != 202:
                    _fail(f"submitting failed: {response.status_code} {response.text}")
                ids.append(response.json()["id"])
        console.print(f"submitted {len(ids)} jobs to {url}; waiting for them to finish…")
        jobs = _wait_for_jobs(client, ids, timeout)
    console.print(_results_table(jobs))
    failed = [job for job in jobs if job["status"] != "succeeded"]
    for job in failed:
        console.print(f"[red]{job['name']}: {job['status']}[/red] — {job['error']}")
    if failed:
        raise typer.Exit(1)


def _wait_for_jobs(client: httpx.Client, ids: list[str], timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    with console.status("") as status:
        while True:
            jobs = [client.get(f"/v1/jobs/{job_id}").raise_for_status().json() for job_id in ids]
            done = sum(job["status"] in TERMINAL for job in jobs)
            running = [j for j in jobs if j["status"] == "running"]
            line = f"{done}/{len(jobs)} done"
            if running:
                job = running[0]
                line += f"; {job['name']} at {100 * job['progress']['fraction']:.0f}%"
            status.update(line)
            if done == len(jobs):
                return jobs
            if time.monotonic() > deadline:
                _fail(f"jobs not finished after {timeout:.0f} s: {line}")
            time.sleep(1.0)


RESULT_COLUMNS = (
    ("test acc", ("final_test_acc", "test_acc"), "{:.3f}"),
    ("gen gap", ("gen_gap_acc",), "{:+.3f}"),
    ("tr H", ("hessian_trace",), "{:.1f}"),
    ("λ_max", ("hessian_top_eigenvalue",), "{:.2f}"),
    ("wall s", ("wall_seconds", "train_seconds"), "{:.1f}"),
)


def _results_table(jobs: list[dict[str, Any]]) -> Table:
    """One row per job, then the mean over seeds of each optimizer; failures say why."""
    table = Table(title="SAM vs SGD on digits (MLP): test accuracy, generalization gap, sharpness")
    table.add_column("optimizer")
    table.add_column("seed", justify="right")
    for heading, _, _ in RESULT_COLUMNS:
        table.add_column(heading, justify="right")
    by_label: dict[str, list[dict[str, Any]]] = {}
    for job in sorted(jobs, key=lambda j: (j["optimizer"], j["seed"])):
        label = job["label"] or job["optimizer"]
        by_label.setdefault(label, []).append(job)
        if job["status"] != "succeeded":
            table.add_row(label, str(job["seed"]), f"[red]{job['status']}[/red]")
            continue
        summary = job["summary"] or {}
        table.add_row(label, str(job["seed"]), *(_cell([summary], *c[1:]) for c in RESULT_COLUMNS))
    table.add_section()
    for label, group in by_label.items():
        summaries = [j["summary"] or {} for j in group if j["status"] == "succeeded"]
        cells = (_cell(summaries, *c[1:]) for c in RESULT_COLUMNS)
        table.add_row(f"[bold]{label}[/bold]", "mean", *cells)
    return table


def _cell(summaries: list[dict[str, Any]], keys: tuple[str, ...], fmt: str) -> str:
    """The mean over `summaries` of the first key they have."""
    for key in keys:
        values = [s[key] for s in summaries if s.get(key) is not None]
        if values:
            return fmt.format(sum(values) / len(values))
    return "–"


def _fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


if __name__ == "__main__":
    app()
