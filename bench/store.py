"""Store and API throughput, each measured beside its baseline in one run, on PostgreSQL.

1. Metric ingest: points/s through `write_metric_points` (COPY + INSERT … ON
   CONFLICT) against one ORM `add` + `flush` round trip per point.
2. Reads over 10,000 jobs: requests/s of `GET /v1/jobs/{id}` and a filtered
   `GET /v1/jobs` against `GET /healthz`, served by uvicorn in a subprocess,
   one httpx client sending requests one after another.

    python -m bench.store [--points 100000] [--jobs 10000] [--requests 500]

Creates a throwaway database on FLATLAB_TEST_PG_URL's server and drops it.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta

import httpx
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

import migrations
from sam_core.spec import JobSpec
from store.db import make_engine, make_session_factory, session_scope
from store.jobs import create_job
from store.keys import get_or_create_team
from store.metrics import write_metric_points
from store.models import Job, MetricPoint, new_id, utcnow
from tests.pg import temporary_database

SPEC = {"model": {"name": "mlp"}, "data": {"name": "digits"}, "optimizer": {"name": "sam"}}
OPTIMIZERS = ["sam", "sgd", "asam", "gsam", "esam"]


def _new_job(factory: sessionmaker[Session], team_id: str = "bench") -> Job:
    with session_scope(factory) as session:
        spec = JobSpec.model_validate(SPEC)
        return create_job(session=session, team_id=team_id, spec=spec, max_attempts=1)


def bench_ingest(factory: sessionmaker[Session], n_bulk: int, n_orm: int) -> tuple[float, float]:
    """Points per second: bulk writes (in 1,000-point calls) and one ORM flush per point."""
    job_id = _new_job(factory).id
    points = [(f"m{i % 10}", i // 10, i / 1000, float(i)) for i in range(n_bulk)]
    start = time.perf_counter()
    with session_scope(factory) as session:
        for i in range(0, n_bulk, 1000):
            write_metric_points(session=session, job_id=job_id, points=points[i : i + 1000])
    bulk = n_bulk / (time.perf_counter() - start)
    job_id = _new_job(factory).id
    start = time.perf_counter()
    with session_scope(factory) as session:
        for name, step, epoch, value in points[:n_orm]:
            session.add(MetricPoint(job_id=job_id, name=name, step=step, epoch=epoch, value=value))
            session.flush()
    orm = n_orm / (time.perf_counter() - start)
    return bulk, orm


def seed_jobs(factory: sessionmaker[Session], n: int) -> tuple[str, str]:
    """n jobs of the default team, five optimizers; returns one job id and the team id."""
    with session_scope(factory) as session:
        team_id = get_or_create_team(session=session, name="default").id
    template = _new_job(factory, team_id)
    columns = {c.key: getattr(template, c.key) for c in Job.__table__.columns}
    now = utcnow()
    rows = [
        {
            **columns,
            "id": new_id(),
            "optimizer": OPTIMIZERS[i % 5],
            "created_at": now - timedelta(seconds=i),
        }
        for i in range(n - 1)
    ]
    with session_scope(factory) as session:
        session.execute(insert(Job), rows)
    return template.id, team_id


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(url: str, home: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "FLATLAB_DATABASE_URL": url, "FLATLAB_HOME": home}
    env["FLATLAB_AUTH_REQUIRED"] = "false"
    cmd = [sys.executable, "-m", "uvicorn", "api.app:app", "--port", str(port)]
    proc = subprocess.Popen([*cmd, "--log-level", "warning"], env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(base + "/healthz", timeout=1)
            return proc, base
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("uvicorn did not start")


def rate(client: httpx.Client, path: str, n: int) -> float:
    client.get(path).raise_for_status()  # warm up
    start = time.perf_counter()
    for _ in range(n):
        client.get(path).raise_for_status()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--orm-points", type=int, default=5_000)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    with temporary_database("flatlab_bench") as url, tempfile.TemporaryDirectory() as home:
        migrations.upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        bulk, orm = bench_ingest(factory, args.points, args.orm_points)
        _show("metric ingest, points/s", {"write_metric_points": bulk, "ORM add+flush": orm})
        job_id, _ = seed_jobs(factory, args.jobs)
        engine.dispose()
        proc, base = serve(url, home)
        try:
            with httpx.Client(base_url=base, timeout=10) as client:
                rates = _measure(client, job_id, args.requests)
        finally:
            proc.terminate()
            proc.wait()
        _show(f"requests/s over {args.jobs} jobs", rates)


def _measure(client: httpx.Client, job_id: str, n: int) -> dict[str, float]:
    paths: dict[str, str] = {
        "/healthz": "/healthz",
        "GET /v1/jobs/{id}": f"/v1/jobs/{job_id}",
        "GET /v1/jobs?optimizer=gsam&limit=50": "/v1/jobs?optimizer=gsam&limit=50",
    }
    return {label: rate(client, path, n) for label, path in paths.items()}


def _show(
    title: str, rates: dict[str, float], fmt: Callable[[float], str] = "{:,.0f}".format
) -> None:
    base = next(iter(rates.values()))
    print(title)
    for label, value in rates.items():
        print(f"  {label:<40} {fmt(value):>10}   ratio {value / base:.3f}")


if __name__ == "__main__":
    main()
