"""Store throughput beside the reference users would pick, measured in one run on PostgreSQL.

1. Metric ingest as the worker writes: one committed transaction per 1,000-point
   batch (`worker.transactions.in_transaction` around `write_metric_points`,
   binary COPY) against MLflow's SQL store `log_batch` of the same 1,000 points,
   on its own database of the same server. Paired rounds in alternating order.
2. One series' history, 20,000 points: `GET /v1/jobs/{id}/metrics` (REST) and
   `store.metrics.iter_metric_rows` (in process) against MLflow's
   `get_metric_history` of the same points.
3. Reads over 10,000 jobs: requests/s of `GET /v1/jobs/{id}` and a filtered
   `GET /v1/jobs` against `GET /healthz`, served by uvicorn in a subprocess,
   one httpx client sending requests one after another.

    python -m bench.store [--points 20000] [--rounds 5] [--history 20000] [--jobs 10000]

Prints medians over rounds and the ratio of each to its reference. Creates
throwaway databases on FLATLAB_TEST_PG_URL's server and drops them. Needs the
`bench` extra (MLflow): `pip install -e '.[bench]'`.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
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
from bench.mlflow_reference import MlflowReference, Point, mlflow_reference
from sam_core.spec import JobSpec
from store.db import make_engine, make_session_factory, session_scope
from store.jobs import create_job
from store.keys import get_or_create_team
from store.metrics import iter_metric_rows, write_metric_points
from store.models import Job, new_id, utcnow
from tests.pg import temporary_database
from worker.transactions import in_transaction

SPEC = {"model": {"name": "mlp"}, "data": {"name": "digits"}, "optimizer": {"name": "sam"}}
OPTIMIZERS = ["sam", "sgd", "asam", "gsam", "esam"]
BATCH = 1000  # points per worker transaction; MLflow's most per log_batch call
SERIES = "train_loss"


def _new_job(factory: sessionmaker[Session], team_id: str = "bench") -> Job:
    with session_scope(factory) as session:
        spec = JobSpec.model_validate(SPEC)
        return create_job(session=session, team_id=team_id, spec=spec, max_attempts=1)


def _points(n: int, names: int = 10) -> list[Point]:
    return [
        (f"m{i % names}" if names > 1 else SERIES, i // names, i / 1000, float(i)) for i in range(n)
    ]


def _ingest_flatlab(factory: sessionmaker[Session], points: list[Point]) -> float:
    """Seconds to write `points` as the worker does: a committed transaction per batch."""
    job_id = _new_job(factory).id
    start = time.perf_counter()
    for i in range(0, len(points), BATCH):
        batch = points[i : i + BATCH]
        in_transaction(
            factory,
            lambda s, b=batch: write_metric_points(session=s, job_id=job_id, points=b),  # type: ignore[misc]
            what="bench batch",
        )
    return time.perf_counter() - start


def _ingest_mlflow(mlflow: MlflowReference, points: list[Point]) -> float:
    run_id = mlflow.new_run()
    start = time.perf_counter()
    _ingest_mlflow_into(mlflow, run_id, points)
    return time.perf_counter() - start


def bench_ingest(
    factory: sessionmaker[Session], mlflow: MlflowReference, n: int, rounds: int
) -> dict[str, float]:
    """Median points/s of each side over paired rounds (the order alternates)."""
    points = _points(n)
    _ingest_flatlab(factory, points[:BATCH])  # warm up both
    _ingest_mlflow(mlflow, points[:BATCH])
    ours, theirs = [], []
    for r in range(rounds):
        sides = [("ours", _ingest_flatlab, factory), ("mlflow", _ingest_mlflow, mlflow)]
        for side, fn, target in sides if r % 2 == 0 else sides[::-1]:
            (ours if side == "ours" else theirs).append(n / fn(target, points))  # type: ignore[operator]
    return {
        "MLflow SqlAlchemyStore.log_batch": statistics.median(theirs),
        "flatlab worker batches (COPY)": statistics.median(ours),
    }


def fill_history(
    factory: sessionmaker[Session], mlflow: MlflowReference, n: int, team_id: str
) -> tuple[str, str]:
    """One flatlab job of `team_id` and one MLflow run, each with the same n-point series."""
    points = _points(n, names=1)
    job_id = _new_job(factory, team_id).id
    for i in range(0, n, BATCH):
        with session_scope(factory) as session:
            write_metric_points(session=session, job_id=job_id, points=points[i : i + BATCH])
    run_id = mlflow.new_run()
    _ingest_mlflow_into(mlflow, run_id, points)
    return job_id, run_id


def _ingest_mlflow_into(mlflow: MlflowReference, run_id: str, points: list[Point]) -> None:
    for i in range(0, len(points), BATCH):
        mlflow.log_batch(run_id, points[i : i + BATCH])


def bench_history(
    factory: sessionmaker[Session],
    mlflow: MlflowReference,
    client: httpx.Client,
    ids: tuple[str, str],
    n: int,
    rounds: int,
) -> dict[str, float]:
    """Median seconds to read the whole series each way (each checked to hold n points)."""
    job_id, run_id = ids

    def rest() -> int:
        answer = client.get(f"/v1/jobs/{job_id}/metrics", params={"names": SERIES})
        return len(answer.raise_for_status().json()["metrics"][SERIES])

    def in_process() -> int:
        with factory() as session:
            return len(list(iter_metric_rows(session=session, job_id=job_id, names=[SERIES])))

    ways: dict[str, Callable[[], int]] = {
        "MLflow get_metric_history": lambda: len(mlflow.history(run_id, SERIES)),
        "flatlab REST GET /v1/jobs/{id}/metrics": rest,
        "flatlab store.metrics.iter_metric_rows": in_process,
    }
    times: dict[str, list[float]] = {label: [] for label in ways}
    for r in range(rounds + 1):  # the first round warms up
        for label, fn in ways.items() if r % 2 else reversed(ways.items()):
            start = time.perf_counter()
            got = fn()
            if r:
                times[label].append(time.perf_counter() - start)
            assert got == n, (label, got)
    return {label: statistics.median(t) for label, t in times.items()}


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
    parser.add_argument("--points", type=int, default=20_000, help="ingest points per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--history", type=int, default=20_000, help="points in the series read")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    with (
        temporary_database("flatlab_bench") as url,
        tempfile.TemporaryDirectory() as home,
        mlflow_reference() as mlflow,
    ):
        migrations.upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        ingest = bench_ingest(factory, mlflow, args.points, args.rounds)
        _show(f"metric ingest, points/s, {BATCH} a transaction, median of {args.rounds}", ingest)
        job_id, team_id = seed_jobs(factory, args.jobs)
        ids = fill_history(factory, mlflow, args.history, team_id)
        proc, base = serve(url, home)
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                history = bench_history(factory, mlflow, client, ids, args.history, args.rounds)
                rates = _measure(client, job_id, args.requests)
        finally:
            proc.terminate()
            proc.wait()
            engine.dispose()
        reads = {label: 1 / seconds for label, seconds in history.items()}
        _show(
            f"{args.history}-point history, reads/s, median of {args.rounds}",
            reads,
            "{:,.1f}".format,
        )
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
