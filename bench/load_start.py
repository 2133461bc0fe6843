"""Job start latency: submit → `running` with a warm worker, beside a Celery no-op.

For each backend, a stack of its own on loopback: the API under uvicorn, one
`flatlab worker` (prefork, one job at a time, a fresh process per job) and a
reference Celery worker (prefork, one process, reused) whose task does
nothing but return the time it started. Each round, once the flatlab worker's
spare process is warm (its log says so), the bench

1. submits a tiny job through `POST /v1/jobs` and takes its `started_at`
   (stamped by the worker's claim, the moment the job becomes `running`)
   minus the time just before the POST: **submit → running**;
2. sends the no-op task on the same broker and takes the time its body
   started minus the time just before the send (**no-op start**), and when
   its result came back (**no-op round trip**).

So both sides are measured in the same run, in alternating rounds, on the
same broker and database. After the rounds it measures the CPU the idle
flatlab worker (its parent and its warm child) uses over 10 s: in embedded
mode that is mostly the filesystem broker's polling. Backends:

- `postgres`: a throwaway database on FLATLAB_TEST_PG_URL's server (dropped
  afterwards) and a private `redis-server` on a free port; auth on.
- `embedded`: the default with nothing set: SQLite and the filesystem broker
  in a temporary `FLATLAB_HOME`; auth off.

    python -m bench.load_start [--rounds 20] [--backend postgres|embedded|both]
                               [--broker-poll-seconds S]   # embedded only; default 0.02

`run_start(n, backend)` returns the figures as a dict (`bench/load.py` uses it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from celery import Celery

import migrations
from flatlab.broker import make_celery
from flatlab.settings import Settings, get_settings
from tests.faults.servers import PrivateRedis
from tests.integration.conftest import Process, create_key, running_api, stack_environment
from tests.pg import temporary_database

BACKENDS = ("postgres", "embedded")
NOOP_TASK = "bench.load_start.noop"
NOOP_QUEUE = "bench_noop"
GOAL_P95_MS = 250.0
# A job that trains in well under a second: the round waits for it to end.
TINY_JOB: dict[str, Any] = {
    "name": "bench-start",
    "model": {"name": "one_hidden", "width": 4},
    "data": {"name": "teacher_student", "n_train": 16, "n_test": 16, "dim": 2, "batch_size": 16},
    "optimizer": {"name": "sgd", "base": {"name": "sgd", "lr": 0.05}},
    "training": {"epochs": 1, "seed": 0, "device": "cpu"},
    "measure": {"every_epochs": 1, "num_examples": 16},
}
WARM_LINE = " warm in "  # worker.app logs it when a new pool child is ready for a job


def noop_app(settings: Settings) -> Celery:
    """flatlab's Celery app on `settings`' broker, with results on and a no-op task.

    The result backend is the Redis broker itself, or files next to the
    filesystem broker in embedded mode.
    """
    app = make_celery(settings)
    if settings.broker.startswith("filesystem"):
        folder = settings.broker_dir / "results"
        folder.mkdir(parents=True, exist_ok=True)
        backend = f"file://{folder}"
    else:
        backend = settings.broker
    app.conf.update(result_backend=backend, task_ignore_result=False, task_acks_late=False)

    @app.task(name=NOOP_TASK, shared=False)
    def noop() -> float:
        return time.time()

    return app


def run_start(n: int, backend: str, broker_poll_seconds: float | None = None) -> dict[str, Any]:
    """Submit → running percentiles over `n` rounds on `backend`, and the no-op reference.

    Returns milliseconds: `start_p50_ms`, `start_p95_ms`, `start_max_ms` (submit →
    running), `noop_p50_ms`, `noop_p95_ms` (send → no-op body starts),
    `noop_rtt_p50_ms`, `noop_rtt_p95_ms` (send → result back), the ratios
    `ratio_p50` and `ratio_p95` (flatlab / no-op start), the raw samples, and
    `idle_worker_cpu_percent` (% of one core). `broker_poll_seconds` sets
    `FLATLAB_BROKER_POLL_SECONDS` for the stack (None: flatlab's default).
    Raises ValueError for an unknown backend, RuntimeError or TimeoutError
    when a part of the stack does not come up or a job does not start.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    if n < 1:
        raise ValueError("n (rounds) must be at least 1")
    with _stack(backend, broker_poll_seconds) as stack:
        stack.round()  # unmeasured: first connections, first send
        starts, noops, trips = [], [], []
        for _ in range(n):
            start, noop, trip = stack.round()
            starts.append(start)
            noops.append(noop)
            trips.append(trip)
        idle_cpu = stack.idle_cpu_percent()
    return {**_figures(backend, starts, noops, trips), "idle_worker_cpu_percent": idle_cpu}


def _figures(
    backend: str, starts: list[float], noops: list[float], trips: list[float]
) -> dict[str, Any]:
    start_p50, start_p95 = _p50(starts), _p95(starts)
    noop_p50, noop_p95 = _p50(noops), _p95(noops)
    return {
        "backend": backend,
        "rounds": len(starts),
        "start_p50_ms": start_p50,
        "start_p95_ms": start_p95,
        "start_max_ms": max(starts),
        "noop_p50_ms": noop_p50,
        "noop_p95_ms": noop_p95,
        "noop_rtt_p50_ms": _p50(trips),
        "noop_rtt_p95_ms": _p95(trips),
        "ratio_p50": start_p50 / noop_p50,
        "ratio_p95": start_p95 / noop_p95,
        "goal_p95_ms": GOAL_P95_MS,
        "start_samples_ms": starts,
        "noop_samples_ms": noops,
    }


def _p50(values: list[float]) -> float:
    return float(statistics.median(values))


def _p95(values: list[float]) -> float:
    """The 95th percentile, interpolated between samples (the largest when n < 2)."""
    if len(values) < 2:
        return float(max(values))
    return float(statistics.quantiles(values, n=20, method="inclusive")[18])


class _Stack:
    """A running API, flatlab worker and no-op worker; `round()` measures once."""

    def __init__(
        self, http: httpx.Client, worker: Process, noop: Callable[..., Any], noop_timeout: float
    ) -> None:
        self.http, self.worker, self.noop, self.noop_timeout = http, worker, noop, noop_timeout
        self.jobs_run = 0

    def round(self) -> tuple[float, float, float]:
        """(submit → running, no-op start, no-op round trip), in milliseconds."""
        _wait_for(lambda: self.worker.log().count(WARM_LINE) > self.jobs_run, "a warm pool child")
        before = time.time()
        response = self.http.post("/v1/jobs", json=TINY_JOB)
        if response.status_code != 202:
            raise RuntimeError(f"submission refused: {response.status_code} {response.text}")
        job_id = response.json()["id"]
        job = _wait_for(lambda: self._job_if(job_id, _ended), f"job {job_id} to end")
        self.jobs_run += 1
        if job["status"] != "succeeded" or job["timings"]["started_at"] is None:
            raise RuntimeError(f"job {job_id} did not run: {job['status']} {job['error']}")
        started = datetime.fromisoformat(job["timings"]["started_at"]).timestamp()
        sent = time.time()
        result = self.noop.apply_async(queue=NOOP_QUEUE)
        body_started = result.get(timeout=self.noop_timeout, interval=0.005)
        back = time.time()
        result.forget()
        return 1000 * (started - before), 1000 * (body_started - sent), 1000 * (back - sent)

    def idle_cpu_percent(self, seconds: float = 10.0) -> float:
        """CPU the idle flatlab worker and its pool child use, in % of one core."""
        _wait_for(lambda: self.worker.log().count(WARM_LINE) > self.jobs_run, "a warm pool child")
        before, start = _cpu_seconds(self.worker.popen.pid), time.monotonic()
        time.sleep(seconds)
        used = _cpu_seconds(self.worker.popen.pid) - before
        return 100 * used / (time.monotonic() - start)

    def _job_if(self, job_id: str, done: Callable[[dict[str, Any]], bool]) -> Any:
        job = self.http.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        return job if done(job) else None


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and its children (Linux `/proc`)."""
    tasks = Path(f"/proc/{pid}/task")
    children = {int(c) for t in tasks.iterdir() for c in (t / "children").read_text().split()}
    total = 0.0
    for each in (pid, *children):
        with contextlib.suppress(FileNotFoundError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _ended(job: dict[str, Any]) -> bool:
    return job["status"] in ("succeeded", "failed", "cancelled")


def _wait_for(probe: Callable[[], Any], what: str, timeout: float = 180.0) -> Any:
    """Call `probe` every 20 ms until it returns something truthy; TimeoutError past `timeout`."""
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:.0f} s")
        time.sleep(0.02)
    return found


@contextmanager
def _stack(backend: str, broker_poll_seconds: float | None) -> Iterator[_Stack]:
    with ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="flatlab-bench-")))
        env = _environment(stack, backend, home)
        if broker_poll_seconds is not None:
            env["FLATLAB_BROKER_POLL_SECONDS"] = str(broker_poll_seconds)
        settings = _settings(env)
        migrations.upgrade(settings.db_url)
        logs = home / "logs"
        logs.mkdir()
        url = stack.enter_context(running_api(env, logs))
        key = create_key(env, "bench") if settings.auth_on else None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        worker = _started(stack, "worker", ["-m", "flatlab.cli", "worker", "--queues", "cpu"], env)
        worker.wait_for_log(" ready.")
        _started(stack, "noop", ["-m", "bench.load_start", "--noop-worker"], env).wait_for_log(
            " ready."
        )
        app = noop_app(settings)
        stack.callback(app.close)
        http = stack.enter_context(httpx.Client(base_url=url, headers=headers, timeout=30))
        yield _Stack(http, worker, app.tasks[NOOP_TASK], noop_timeout=60.0)


def _environment(stack: ExitStack, backend: str, home: Path) -> dict[str, str]:
    """The stack's environment; defaults for everything the backend does not set."""
    defaults = {"HEARTBEAT_SECONDS": "5", "RECONCILE_SECONDS": "15", "WORKER_STALE_SECONDS": "30"}
    if backend == "embedded":
        env = stack_environment(home, "", "", **defaults)
        for name in ("FLATLAB_DATABASE_URL", "FLATLAB_BROKER_URL", "FLATLAB_AUTH_REQUIRED"):
            env.pop(name)
        return env
    database_url = stack.enter_context(temporary_database("flatlab_bench_start"))
    redis = PrivateRedis()
    stack.callback(redis.close)
    return stack_environment(home, database_url, redis.url, **defaults)


def _settings(env: dict[str, str]) -> Settings:
    fields = {k.removeprefix("FLATLAB_").lower(): v for k, v in env.items()}
    return Settings(**{k: v for k, v in fields.items() if k in Settings.model_fields})


def _started(stack: ExitStack, name: str, args: list[str], env: dict[str, str]) -> Process:
    log_dir = Path(env["FLATLAB_HOME"]) / "logs"
    proc = Process(name, [sys.executable, *args], env, log_dir)
    stack.callback(proc.stop)
    return proc


def _serve_noop() -> None:
    """The reference worker: a plain prefork Celery worker, one process, reused."""
    app = noop_app(get_settings())
    argv = ["worker", "--pool", "prefork", "--concurrency", "1", "--queues", NOOP_QUEUE]
    app.worker_main([*argv, "--loglevel", "INFO", "--without-gossip", "--without-mingle"])


def _report(figures: dict[str, Any]) -> str:
    f = figures
    return (
        f"{f['backend']:>9}: submit → running p50 {f['start_p50_ms']:7.1f} ms, "
        f"p95 {f['start_p95_ms']:7.1f} ms (max {f['start_max_ms']:.1f}, goal p95 ≤ "
        f"{f['goal_p95_ms']:.0f}) | Celery no-op start p50 {f['noop_p50_ms']:6.1f} ms, "
        f"p95 {f['noop_p95_ms']:6.1f} ms, round trip p50 {f['noop_rtt_p50_ms']:6.1f} ms | "
        f"ratio flatlab / no-op: p50 {f['ratio_p50']:.1f}×, p95 {f['ratio_p95']:.1f}× "
        f"({f['rounds']} rounds) | idle worker CPU {f['idle_worker_cpu_percent']:.2f} % of a core"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="measured rounds per backend")
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--broker-poll-seconds", type=float, help="FLATLAB_BROKER_POLL_SECONDS")
    parser.add_argument("--noop-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.noop_worker:
        _serve_noop()
        return
    for backend in BACKENDS if args.backend == "both" else (args.backend,):
        figures = run_start(args.rounds, backend, args.broker_poll_seconds)
        print(_report(figures), flush=True)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
