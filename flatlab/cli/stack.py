"""`flatlab up|down|api|worker|reconcile`: run the stack, or one part of it.

`flatlab up` is the whole service on one machine: it applies the migrations,
then starts the API (uvicorn) and one Celery worker as child processes,
embedded by default (SQLite and a filesystem broker under `./.flatlab/`) or
against `FLATLAB_DATABASE_URL` / `FLATLAB_BROKER_URL`. With `--detach` it
writes pid files and the API's URL under `<home>/run/` and returns once the
API it started answers and the worker listens; `flatlab down` stops them (a
running job is checkpointed and re-queued first).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer

from flatlab.cli.common import console, fail
from flatlab.cli.database import redact, upgrade_or_fail
from flatlab.cli.procs import PortTaken, listen, live_pids, run_dir, spawn, stop_all
from flatlab.settings import Settings, get_settings


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
    folder, log_dir = run_dir(settings), settings.home.resolve() / "logs"
    if live_pids(folder):
        fail(f"flatlab is already running (pid files in {folder}); run `flatlab down` first")
    try:
        sock = listen(host, port)
    except PortTaken as exc:
        fail(f"cannot serve the API: {exc}; stop what listens there or pick another --port")
    upgrade_or_fail(settings)
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "FLATLAB_HOME": str(settings.home.resolve())}
    queues = "gpu,cpu" if shutil.which("nvidia-smi") else "cpu"
    commands = {
        "api": ["-m", "uvicorn", "api.app:app", "--fd", str(sock.fileno())],
        "worker": ["-m", "flatlab.cli", "worker", "--queues", queues, "-c", str(concurrency)],
    }
    with sock:  # the API inherits the socket; this process keeps no copy
        procs = {
            name: spawn(
                [sys.executable, *argv],
                env,
                log_dir / f"{name}.log",
                pass_fds=(sock.fileno(),) if name == "api" else (),
            )
            for name, argv in commands.items()
        }
    folder.mkdir(parents=True, exist_ok=True)
    for name, proc in procs.items():
        (folder / f"{name}.pid").write_text(str(proc.pid))
    url = f"http://{_url_host(host)}:{port}"
    try:
        _wait_ready(url, procs, log_dir, timeout)
    except BaseException:
        stop_all(folder)
        raise
    (folder / "api.url").write_text(url)
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
        stop_all(folder)


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def down(
    grace: Annotated[float, typer.Option(help="seconds to let a job checkpoint")] = 60.0,
) -> None:
    """Stop what `flatlab up` started (the running job is checkpointed and re-queued)."""
    stopped = stop_all(run_dir(get_settings()), grace)
    console.print("stopped " + (", ".join(stopped) if stopped else "nothing: flatlab was not up"))


def _wait_ready(
    url: str, procs: dict[str, subprocess.Popen[bytes]], log_dir: Path, timeout: float
) -> None:
    """Until the API answers /readyz on the socket it was handed and the worker logged
    ` ready.`; fails with the log's tail if either exits, or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    api_ready = worker_ready = False
    while True:
        for name, proc in procs.items():
            if proc.poll() is not None:
                tail = (log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                fail(f"the {name} exited with code {proc.returncode}:\n{tail}")
        if api_ready and worker_ready:
            return  # checked alive after both were seen ready
        if time.monotonic() > deadline:
            fail(f"not ready after {timeout:.0f} s; see the logs in {log_dir}")
        api_ready = api_ready or _answers(f"{url}/readyz")
        worker_log = (log_dir / "worker.log").read_text(errors="replace")
        worker_ready = worker_ready or " ready." in worker_log
        time.sleep(0.3)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _print_where(settings: Settings, url: str, log_dir: Path) -> None:
    console.print(f"[bold green]flatlab is up[/bold green] at {url}  (API docs: {url}/docs)")
    console.print(f"  database  {redact(settings.db_url)}")
    console.print(f"  broker    {redact(settings.broker)}")
    console.print(f"  files     {settings.artifacts_dir}")
    console.print(f"  logs      {log_dir}")
    if not settings.auth_on:
        console.print("  auth      [yellow]off[/yellow] (embedded mode: anyone who can reach it)")
    console.print("  stop with `flatlab down`")


def api(
    port: Annotated[int | None, typer.Option(help="default FLATLAB_API_PORT")] = None,
    host: Annotated[str | None, typer.Option(help="default FLATLAB_API_HOST")] = None,
) -> None:
    """Serve the REST API (uvicorn) in this process."""
    import uvicorn

    settings = get_settings()
    host, port = host or settings.api_host, port or settings.api_port
    try:
        listen(host, port).close()  # a clear message rather than uvicorn's errno
    except PortTaken as exc:
        fail(f"cannot serve the API: {exc}; stop what listens there or pick another --port")
    uvicorn.run("api.app:app", host=host, port=port)


def worker(
    queues: Annotated[str | None, typer.Option(help="default: gpu with --gpu, else cpu")] = None,
    gpu: Annotated[int | None, typer.Option(help="the one GPU this worker uses")] = None,
    gpus: Annotated[
        str | None,
        typer.Option(
            help="GPUs of one worker, e.g. 0,1,2,3: a job with resources.devices N ≤ 4 "
            "runs N ranks on them (DDP)"
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="jobs at once")] = 1,
    pool: Annotated[str, typer.Option(help="prefork (default) or solo")] = "prefork",
    loglevel: Annotated[str, typer.Option()] = "INFO",
) -> None:
    """Run a Celery worker: one process per GPU, a fresh child for every job."""
    env = dict(os.environ)
    if gpu is not None and gpus is not None:
        raise typer.BadParameter("give --gpu or --gpus, not both", param_hint="--gpus")
    if gpus is not None:
        ids = [g.strip() for g in gpus.split(",")]
        if not all(g.isdigit() for g in ids) or len(set(ids)) != len(ids):
            raise typer.BadParameter(
                f"{gpus!r}: distinct GPU numbers, e.g. 0,1,2,3", param_hint="--gpus"
            )
        env["CUDA_VISIBLE_DEVICES"] = ",".join(ids)
        gpu_label: str | None = "gpus" + "-".join(ids)
    elif gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)  # set before any CUDA use, in every child
        gpu_label = f"gpu{gpu}"
    else:
        gpu_label = None
    if concurrency > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // concurrency))
    queues = queues or ("gpu" if gpu_label is not None else "cpu")
    name = f"{gpu_label or 'cpu'}-{os.getpid()}@%h"
    argv = [sys.executable, "-m", "celery", "-A", "worker.app", "worker"]
    argv += ["--pool", pool, "--concurrency", str(concurrency), "--queues", queues]
    argv += ["--hostname", name, "--loglevel", loglevel, "--max-tasks-per-child", "1"]
    argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    os.execve(sys.executable, argv, env)


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
