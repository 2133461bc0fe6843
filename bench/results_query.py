"""A grouped results query in SQL against fetching the rows and aggregating in Python.

Creates a throwaway PostgreSQL database, fills it with 10,000 jobs (spec and
summary JSON as the API writes them) and 1,000,000 metric points (COPY), then
times `GET /v1/results?group_by=optimizer.name,optimizer.rho&metrics=…` as
`store.results.query_groups` runs it, against the same answer computed by
fetching every matching row and grouping in Python. Prints both and the ratio;
drops the database.

    python bench/results_query.py [--jobs 10000] [--points 1000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import migrations
from store.db import make_engine, make_session_factory
from store.models import Job, Team
from store.results import Condition, Field, ResultsQuery, query_groups

ADMIN_URL = os.environ.get(
    "FLATLAB_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
RULES = [("sgd", None), ("sam", 0.05), ("sam", 0.1), ("asam", 0.5), ("vasso", 0.05)]
METRICS = ("final_test_acc", "gen_gap_acc", "hessian_trace")
NAMES = ("train_loss_step", "grad_evals", "test_acc", "test_loss")


def fill(url: str, n_jobs: int, n_points: int) -> str:
    engine = make_engine(url)
    rng = np.random.default_rng(0)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(Team).values(id="t" * 32, name="bench", created_at=now))
        rows = [_job(i, rng, now) for i in range(n_jobs)]
        for start in range(0, n_jobs, 2000):
            conn.execute(insert(Job), rows[start : start + 2000])
    per_job = n_points // n_jobs
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        copy_sql = "COPY metric_points (job_id, name, step, epoch, value, time) FROM STDIN"
        with cursor.copy(copy_sql) as copy:  # type: ignore[attr-defined]
            for row in rows:
                for k in range(per_job):
                    copy.write_row((row["id"], NAMES[k % 4], k, k / 10, float(k), now))
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()
    return "t" * 32


def _job(i: int, rng: np.random.Generator, now: datetime) -> dict:
    name, rho = RULES[i % len(RULES)]
    optimizer = {"name": name, "base": {"name": "sgd", "lr": [0.1, 0.05, 0.01][i % 3]}}
    if rho is not None:
        optimizer["rho"] = rho
    spec = {
        "model": {"name": "mlp", "hidden": [64]},
        "data": {"name": "digits", "batch_size": 128},
        "optimizer": optimizer,
        "training": {"epochs": 10, "seed": i % 10},
    }
    summary = {m: float(v) for m, v in zip(METRICS, rng.random(3), strict=True)}
    summary.update({f"extra_{k}": float(k) for k in range(12)})  # summaries carry more keys
    return {
        "id": f"{i:032x}",
        "team_id": "t" * 32,
        "spec": spec,
        "spec_hash": f"{i:064x}",
        "optimizer": name,
        "model": "mlp",
        "dataset": "digits",
        "seed": i % 10,
        "tags": ["bench"],
        "queue": "cpu",
        "status": "succeeded" if i % 10 else "failed",
        "attempts": 1,
        "infra_failures": 0,
        "max_attempts": 3,
        "created_at": now,
        "step": 100,
        "epoch": 10.0,
        "fraction": 1.0,
        "summary": summary,
    }


def in_sql(factory, team_id: str) -> list[dict]:
    query = ResultsQuery(
        team_id=team_id,
        filters=((Condition(Field("column", ("status",)), "eq", ("succeeded",)),),),
        group_by=(Field("spec", ("optimizer", "name")), Field("spec", ("optimizer", "rho"))),
        metrics=METRICS,
    )
    with factory() as session:
        return query_groups(session=session, query=query)


def in_python(factory, team_id: str) -> dict[tuple, dict]:
    with factory() as session:
        stmt = select(Job.spec, Job.summary).where(
            Job.team_id == team_id, Job.status == "succeeded"
        )
        rows = session.execute(stmt).all()
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for spec, summary in rows:
        groups[(spec["optimizer"]["name"], spec["optimizer"].get("rho"))].append(summary)
    out = {}
    for key, summaries in groups.items():
        out[key] = {}
        for m in METRICS:
            x = np.array([s[m] for s in summaries])
            out[key][m] = (len(x), x.mean(), x.std(ddof=1), x.min(), x.max())
    return out


def timed(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    name = f"flatlab_bench_{secrets.token_hex(4)}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        migrations.upgrade(url)
        started = time.perf_counter()
        team_id = fill(url, args.jobs, args.points)
        print(
            f"filled {args.jobs} jobs, {args.points} metric points "
            f"in {time.perf_counter() - started:.1f} s"
        )
        engine = make_engine(url)
        factory = make_session_factory(engine)
        sql_s, groups = timed(lambda: in_sql(factory, team_id), args.repeats)
        py_s, expected = timed(lambda: in_python(factory, team_id), args.repeats)
        for g in groups:
            key = (g["key"]["optimizer.name"], g["key"]["optimizer.rho"])
            n, mean, std, _, _ = expected[key]["final_test_acc"]
            stat = g["metrics"]["final_test_acc"]
            # float64 sums of n values (8·n·eps, as tests/tolerance.float_tolerance); the
            # std subtracts the mean first, so its error is relative to max(|mean|, std).
            tol = 8 * n * sys.float_info.epsilon
            assert stat["n"] == n and abs(stat["mean"] - mean) <= tol * abs(mean), (key, stat)
            assert abs(stat["std"] - std) <= tol * max(abs(mean), std), (key, stat, std)
        engine.dispose()
        print(f"groups: {len(groups)}, median of {args.repeats}")
        print(f"  SQL group-by (store.results.query_groups): {sql_s * 1000:8.1f} ms")
        print(f"  fetch rows + aggregate in Python:          {py_s * 1000:8.1f} ms")
        print(f"  ratio (Python / SQL): {py_s / sql_s:.1f}x")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
