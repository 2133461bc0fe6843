"""A team's load on one API process: concurrent reads, a long history, job start.

1. **Read load**: for 1, 64 and 256 keep-alive connections, `GET /v1/jobs/{id}`
   and `GET /healthz` of the same server, each for `--seconds`, in alternating
   rounds: requests/s (and the ratio job/healthz), p50 and p99 latency, failed
   requests (an answer other than 200, or none within `--timeout`), and how long
   a `/healthz` probe on a connection of its own waited while the job reads ran.
2. **History**: one job's `--points`-point series read through
   `GET /v1/jobs/{id}/metrics` as `points` (the JSON shape of old), `columns`
   and `arrow`, parsed by the client, against the same rows fetched as tuples
   straight from PostgreSQL (the database's own speed): median ms and ratios.
3. **Start**: submit → running with a warm worker, from `bench/load_start.py`
   (`run_start`), when this checkout has it.

    python -m bench.load [--seconds 4] [--connections 1,64,256] [--points 20000]
                         [--rounds 1] [--start-rounds 10] [--source DIR] [--baseline DIR]

Everything runs on loopback: uvicorn serves `api.app:app` in a subprocess on a
throwaway PostgreSQL database of FLATLAB_TEST_PG_URL's server (dropped
afterwards), auth off. `--source DIR` serves another checkout's `api` (to
measure the code before a change with the same client); `--baseline DIR`
adds that checkout's history reads, on the same database in the same run. The load client is a
minimal HTTP/1.1 keep-alive client on asyncio (uvloop when installed), so that
it costs the shared CPUs far less than the server it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

import migrations
from api.deps import DEFAULT_TEAM
from bench.store import _free_port, _new_job
from store.db import make_engine, make_session_factory, session_scope
from store.keys import get_or_create_team
from store.metrics import write_metric_points
from tests.pg import temporary_database

HOST = "127.0.0.1"


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    seconds: float = 0.0
    probe_max: float = 0.0  # slowest /healthz probe during the load (seconds)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def quantile(self, q: float) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[round(q * 100) - 1]


async def _request(conn: tuple[Any, Any], request: bytes) -> int:
    reader, writer = conn
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _open(port: int, path: str, timeout: float) -> tuple[Any, Any] | None:
    """A connection that answered one request (not measured); None if it did not."""
    try:
        conn = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
        await asyncio.wait_for(_request(conn, _get(path)), timeout)
    except (TimeoutError, OSError, asyncio.IncompleteReadError):
        return None
    return conn


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()


async def _run_load(port: int, path: str, connections: int, seconds: float, timeout: float) -> Load:
    load = Load()
    opened = await asyncio.gather(*(_open(port, path, timeout) for _ in range(connections)))
    conns = [c for c in opened if c is not None]
    load.failures = len(opened) - len(conns)  # no answer within the timeout: a lock-up
    probe = await _open(port, "/healthz", timeout)
    request, start = _get(path), time.perf_counter()
    deadline = start + seconds

    async def worker(conn: tuple[Any, Any]) -> None:
        while (now := time.perf_counter()) < deadline:
            try:
                status = await asyncio.wait_for(_request(conn, request), timeout)
            except (TimeoutError, OSError, asyncio.IncompleteReadError):
                load.failures += 1
                return  # the connection is in an unknown state: stop using it
            load.latencies.append(time.perf_counter() - now)
            load.failures += status != 200

    async def prober() -> None:
        if probe is None:
            load.probe_max = float("inf")
            return
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                await asyncio.wait_for(_request(probe, _get("/healthz")), timeout)
            except (TimeoutError, OSError, asyncio.IncompleteReadError):
                load.probe_max = float("inf")
                return
            load.probe_max = max(load.probe_max, time.perf_counter() - t0)
            await asyncio.sleep(0.2)

    await asyncio.gather(*(worker(c) for c in conns), prober())
    load.seconds = time.perf_counter() - start
    for _, writer in [*conns, *([probe] if probe else [])]:
        writer.close()
    return load


def measure_load(port: int, path: str, connections: int, seconds: float, timeout: float) -> Load:
    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.run(_run_load(port, path, connections, seconds, timeout))
    return asyncio.run(_run_load(port, path, connections, seconds, timeout))


@contextlib.contextmanager
def serve(url: str, source: str | None) -> Iterator[int]:
    """uvicorn serving `api.app:app` (of `source`, if given) on a free loopback port."""
    port, home = _free_port(), tempfile.mkdtemp(prefix="flatlab-load-")
    env = {**os.environ, "FLATLAB_DATABASE_URL": url, "FLATLAB_HOME": home}
    env.update(FLATLAB_AUTH_REQUIRED="false", FLATLAB_CHECK_DATA_ON_SUBMIT="false")
    if source:
        env["PYTHONPATH"] = os.path.abspath(source)
    argv = [sys.executable, "-m", "uvicorn", "api.app:app", "--host", HOST, "--port", str(port)]
    proc = subprocess.Popen([*argv, "--log-level", "warning"], env=env, cwd=source or None)
    try:
        for _ in range(400):
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"http://{HOST}:{port}/healthz", timeout=1).raise_for_status()
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("uvicorn did not start")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:  # a locked-up server may not stop on SIGTERM
            proc.kill()
            proc.wait()


def seed(url: str, points: int) -> tuple[str, str]:
    """A job to read, and a job with one `points`-point series `train_loss` (default team)."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        team_id = get_or_create_team(session=session, name=DEFAULT_TEAM).id
    job_id, history_id = _new_job(factory, team_id).id, _new_job(factory, team_id).id
    rows = [("train_loss", step, step / 100, 1.0 / (1 + step)) for step in range(points)]
    with session_scope(factory) as session:
        write_metric_points(session=session, job_id=history_id, points=rows)
    engine.dispose()
    return job_id, history_id


def read_loads(port: int, job_id: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    out = []
    for connections in args.connections:
        runs: dict[str, list[Load]] = {"healthz": [], "job": []}
        for _ in range(args.rounds):  # alternating, so both see the same machine
            for name, path in (("healthz", "/healthz"), ("job", f"/v1/jobs/{job_id}")):
                load = measure_load(port, path, connections, args.seconds, args.timeout)
                runs[name].append(load)
        healthz = statistics.median(r.rate for r in runs["healthz"])
        job = sorted(runs["job"], key=lambda r: r.rate)[len(runs["job"]) // 2]
        out.append(
            {
                "connections": connections,
                "healthz_rps": healthz,
                "job_rps": job.rate,
                "ratio": job.rate / healthz,
                "p50_ms": 1000 * job.quantile(0.5),
                "p99_ms": 1000 * job.quantile(0.99),
                "failed": sum(r.failures for r in runs["job"]),
                "answered": sum(len(r.latencies) for r in runs["job"]),
                "probe_max_ms": 1000 * max(r.probe_max for r in runs["job"]),
            }
        )
    return out


def history(port: int, url: str, job_id: str, n: int) -> dict[str, float]:
    """Median ms to get the series as usable columns, through REST and straight from SQL."""
    base = f"http://{HOST}:{port}/v1/jobs/{job_id}/metrics?names=train_loss"

    def rest(fmt: str) -> Any:
        with httpx.Client(timeout=60) as client:
            try:
                r = client.get(base + ("" if fmt == "points" else f"&format={fmt}"))
            except httpx.HTTPError:
                return None
            arrow = r.headers.get("content-type") == "application/vnd.apache.arrow.stream"
            if r.status_code != 200 or (fmt == "arrow") != arrow:
                return None  # no answer, or a server without this format
            if fmt == "arrow":
                import pyarrow as pa

                return pa.ipc.open_stream(r.content).read_all()
            body = r.json()
            return body if (fmt == "columns") == ("series" in body) else None

    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))

    def sql(_: str) -> Any:  # on a connection already open, as a pool would hand it out
        return conn.execute(
            "SELECT step, epoch, value, time FROM metric_points "
            "WHERE job_id = %s AND name = 'train_loss' ORDER BY step",
            (job_id,),
        ).fetchall()

    out: dict[str, float] = {}
    for name, call in (("sql", sql), ("points", rest), ("columns", rest), ("arrow", rest)):
        if call(name) is None:  # warm up; None: no such format here, or no answer
            continue
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            call(name)
            times.append(1000 * (time.perf_counter() - t0))
        out[name] = statistics.median(times)
    conn.close()
    return out


def start_section(rounds: int) -> list[dict[str, Any]] | None:
    try:
        from bench.load_start import run_start  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return [run_start(rounds, backend) for backend in ("postgres", "embedded")]


def report(loads: list[dict[str, Any]], hist: dict[str, float], starts: Any, args: Any) -> None:
    print("\nread load: GET /v1/jobs/{id} against GET /healthz of the same server")
    print(
        "| connections | /healthz req/s | job req/s | job / healthz | p50 ms | p99 ms "
        "| failed / answered | slowest /healthz probe ms |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in loads:
        print(
            f"| {r['connections']} | {r['healthz_rps']:,.0f} | {r['job_rps']:,.0f} "
            f"| **{r['ratio']:.2f}×** | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} "
            f"| {r['failed']} / {r['answered']:,} | {r['probe_max_ms']:.0f} |"
        )
    print(f"\nhistory: one {args.points:,}-point series, median of {args.history} reads")
    print("| read | ms | vs points JSON | vs SQL tuples |")
    print("| --- | --- | --- | --- |")
    for name, ms in hist.items():
        vs_points = hist["points"] / ms if "points" in hist else float("nan")
        print(f"| {name} | {ms:.1f} | {vs_points:.2f}× | {hist['sql'] / ms:.2f}× |")
    if starts is None:
        print("\nstart section: not available in this checkout")
        return
    if not starts:
        print("\nstart section: skipped (--start-rounds 0)")
        return
    print("\nstart: submit → running, warm worker (ms)")
    keys = ("start_p50_ms", "start_p95_ms", "noop_p50_ms", "noop_p95_ms", "ratio_p95")
    for backend, figures in zip(("postgres", "embedded"), starts, strict=True):
        print(backend, json.dumps({k: figures.get(k) for k in keys}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="per load window")
    parser.add_argument("--connections", default="1,64,256")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=30.0, help="per request")
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--history", type=int, default=15, help="reads per format")
    parser.add_argument("--start-rounds", type=int, default=10, help="0: skip the start section")
    parser.add_argument("--source", help="serve the api package of this checkout instead")
    parser.add_argument("--baseline", help="a checkout whose history reads to measure too")
    args = parser.parse_args()
    args.connections = [int(c) for c in args.connections.split(",")]
    with temporary_database("flatlab_load") as url:
        migrations.upgrade(url)
        job_id, history_id = seed(url, args.points)
        with serve(url, args.source) as port:
            hist = history(port, url, history_id, args.history)  # first: on a rested server
            if args.baseline:
                with serve(url, args.baseline) as baseline:
                    before = history(baseline, url, history_id, args.history)
                hist.update({f"{k} (baseline)": v for k, v in before.items() if k != "sql"})
            loads = read_loads(port, job_id, args)
    starts = start_section(args.start_rounds) if args.start_rounds else []
    report(loads, hist, starts, args)


if __name__ == "__main__":
    main()
