"""A grouped results query against fetching the rows and aggregating in Python, at several sizes.

For each `--jobs` size: creates a throwaway PostgreSQL database, fills it by
COPY with that many jobs (spec and summary JSON as the API writes them; the
result-cell triggers of migration 0004 roll them up as they land) and
`--points` metric points, then times
`GET /v1/results?group_by=optimizer.name,optimizer.rho&metrics=…&filter=status:eq:succeeded`
as `store.results.query_groups` answers it (from the result cells), the same
query over the jobs' JSON (`query_groups_from_json`, the path before 0004),
and fetching every matching row and grouping in Python. Checks all three give
the same groups, prints medians and ratios, and drops the database.

    python bench/results_query.py [--jobs 10000 100000] [--points 1000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert, select, text, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import migrations
from store.db import make_engine, make_session_factory
from store.models import Job, Team
from store.results import Condition, Field, ResultsQuery, query_groups, query_groups_from_json
from tests.pg import temporary_database

RULES = [("sgd", None), ("sam", 0.05), ("sam", 0.1), ("asam", 0.5), ("vasso", 0.05)]
METRICS = ("final_test_acc", "gen_gap_acc", "hessian_trace")
NAMES = ("train_loss_step", "grad_evals", "test_acc", "test_loss")
TEAM = "t" * 32
JOB_COLUMNS = (
    "id", "team_id", "spec", "spec_hash", "optimizer", "model", "dataset", "seed", "tags",
    "queue", "status", "attempts", "infra_failures", "max_attempts", "created_at", "step",
    "epoch", "fraction", "summary",
)  # fmt: skip


def fill(url: str, n_jobs: int, n_points: int) -> None:
    """n_jobs jobs and n_points metric points of team TEAM, both by COPY."""
    engine = make_engine(url)
    rng = np.random.default_rng(0)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(Team).values(id=TEAM, name="bench", created_at=now))
    per_job = max(n_points // n_jobs, 1)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        columns = ", ".join(JOB_COLUMNS)
        with cursor.copy(f"COPY jobs ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for i in range(n_jobs):
                row = _job(i, rng, now)
                copy.write_row([_text(row[c]) for c in JOB_COLUMNS])
        copy_sql = "COPY metric_points (job_id, name, step, epoch, value, time) FROM STDIN"
        with cursor.copy(copy_sql) as copy:  # type: ignore[attr-defined]
            for i in range(n_jobs):
                for k in range(per_job):
                    copy.write_row((f"{i:032x}", NAMES[k % 4], k, k / 10, float(k), now))
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()


def _text(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict | list) else value


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
        "team_id": TEAM,
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


QUERY = ResultsQuery(
    team_id=TEAM,
    filters=((Condition(Field("column", ("status",)), "eq", ("succeeded",)),),),
    group_by=(Field("spec", ("optimizer", "name")), Field("spec", ("optimizer", "rho"))),
    metrics=METRICS,
)


def in_sql(factory, answer=query_groups) -> dict[tuple, dict]:
    with factory.begin() as session:  # committed, as the API commits each request
        groups = answer(session=session, query=QUERY)
    return {
        (g["key"]["optimizer.name"], g["key"]["optimizer.rho"]): {
            "jobs": g["jobs"],
            **{
                m: tuple(g["metrics"][m][k] for k in ("n", "mean", "std", "min", "max"))
                for m in METRICS
            },
        }
        for g in groups
    }


def in_python(factory) -> dict[tuple, dict]:
    with factory() as session:
        stmt = select(Job.spec, Job.summary).where(Job.team_id == TEAM, Job.status == "succeeded")
        rows = session.execute(stmt).all()
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for spec, summary in rows:
        groups[(spec["optimizer"]["name"], spec["optimizer"].get("rho"))].append(summary)
    out: dict[tuple, dict] = {}
    for key, summaries in groups.items():
        out[key] = {"jobs": len(summaries)}
        for m in METRICS:
            x = np.array([s[m] for s in summaries])
            out[key][m] = (len(x), x.mean(), x.std(ddof=1), x.min(), x.max())
    return out


def same(got: dict[tuple, dict], want: dict[tuple, dict]) -> None:
    """Equal groups, counts, min and max; mean and std to float64 rounding of n-term sums."""
    assert got.keys() == want.keys(), (sorted(got, key=str), sorted(want, key=str))
    for key, stats in want.items():
        assert got[key]["jobs"] == stats["jobs"], key
        for m in METRICS:
            n, mean, std, low, high = stats[m]
            g = got[key][m]
            # 8·n·eps as tests/tolerance.float_tolerance; the std subtracts the mean first,
            # so its error is relative to max(|mean|, std).
            tol = 8 * n * sys.float_info.epsilon
            assert g[0] == n and (g[3], g[4]) == (low, high), (key, m, g)
            assert abs(g[1] - mean) <= tol * abs(mean), (key, m, g)
            assert abs(g[2] - std) <= tol * max(abs(mean), std), (key, m, g, std)


def after_a_finish(factory, i: int) -> float:
    """Job i is written running, then finished with its summary (as the worker writes
    them, two transactions); returns the seconds of the grouped query that follows."""
    row = _job(i, np.random.default_rng(i), datetime.now(UTC))
    summary, status = row.pop("summary"), row.pop("status")
    with factory.begin() as session:
        session.execute(insert(Job).values(**row, status="running"))
    with factory.begin() as session:
        done = update(Job).where(Job.id == row["id"]).values(status=status, summary=summary)
        session.execute(done)
    started = time.perf_counter()
    in_sql(factory)
    return time.perf_counter() - started


def timed(fn, repeats: int) -> tuple[float, Any]:
    """Median seconds of `repeats` calls after one untimed call (connections, caches)."""
    times, result = [], fn()
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def run(n_jobs: int, n_points: int, repeats: int) -> dict[str, float]:
    """Median seconds of each way at n_jobs jobs (answers checked equal)."""
    with temporary_database("flatlab_bench") as url:
        migrations.upgrade(url)
        started = time.perf_counter()
        fill(url, n_jobs, n_points)
        filled = time.perf_counter() - started
        print(f"{n_jobs:,} jobs, {n_points:,} metric points: filled in {filled:.1f} s")
        engine = make_engine(url)
        factory = make_session_factory(engine)
        try:
            started = time.perf_counter()
            in_sql(factory)  # recomputes every cell the fill touched
            first_s = time.perf_counter() - started
            cells_s, _ = timed(lambda: in_sql(factory), repeats)
            json_s, _ = timed(lambda: in_sql(factory, query_groups_from_json), repeats)
            finishes = [after_a_finish(factory, n_jobs + 1 + k) for k in range(repeats)]
            py_s, expected = timed(lambda: in_python(factory), repeats)
            cells, from_json = in_sql(factory), in_sql(factory, query_groups_from_json)
        finally:
            engine.dispose()
        same(cells, expected)
        same(from_json, expected)
    times = {
        "query_groups (result cells)": cells_s,
        "  the same, right after a job finished": statistics.median(finishes),
        "  the same, first read after the fill": first_s,
        "query_groups_from_json (SQL over JSONB)": json_s,
        "fetch rows + aggregate in Python": py_s,
    }
    print(f"  {len(cells)} groups, median of {repeats}")
    for label, seconds in times.items():
        print(f"  {label:<42} {seconds * 1000:9.1f} ms   Python / this {py_s / seconds:7.1f}x")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    results = {n: run(n, args.points, args.repeats) for n in args.jobs}
    smallest = min(results)
    for n in sorted(results)[1:]:
        print(f"time at {n:,} jobs / time at {smallest:,} jobs:")
        for label, seconds in results[n].items():
            print(f"  {label:<42} {seconds / results[smallest][label]:6.2f}x")


if __name__ == "__main__":
    main()
