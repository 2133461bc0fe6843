"""The typed summary tables of migration 0004 on PostgreSQL, checked against the jobs themselves.

`job_result_metrics` must hold exactly each job's numeric summary values, and
grouped results answered from `result_cells` must equal an independent pandas
aggregation of the jobs as the test made them, through every status change,
summary rewrite and deletion, concurrent finishes, and a backfill at upgrade.
"""

from __future__ import annotations

import math
import random
import threading
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

import migrations
from sam_core.spec import JobSpec
from store.db import make_engine, make_session_factory, session_scope
from store.jobs import create_job, delete_job
from store.leases import claim_job, finish_job
from store.models import Job, JobResult, JobResultMetric
from store.result_cells import query_groups_from_cells
from store.results import Condition, Field, ResultsQuery, query_groups_from_json
from tests.pg import temporary_database
from tests.tolerance import float_tolerance

METRICS = ("acc", "loss", "wall")
RULES = [("sgd", None), ("sam", 0.05), ("sam", 0.1), ("asam", 0.5)]
F = Field
QUERIES = [
    ((F("spec", ("optimizer", "name")), F("spec", ("optimizer", "rho"))), ()),
    ((F("column", ("label",)),), ((Condition(F("column", ("status",)), "eq", ("succeeded",)),),)),
    ((F("column", ("status",)), F("column", ("optimizer",))), ()),
    ((F("spec", ("optimizer", "base", "lr")), F("spec", ("model", "name"))), ()),
    ((), ((Condition(F("spec", ("optimizer", "rho")), "ge", (0.06,)),),)),
    (
        (F("spec", ("data", "name")),),
        (
            (Condition(F("spec", ("optimizer", "name")), "in", ("sam", "asam")),),
            (Condition(F("spec", ("optimizer", "label")), "eq", (None,)),),
        ),
    ),
    ((F("benchmark", ()),), ((Condition(F("column", ("optimizer",)), "ne", ("sgd",)),),)),
]
COLUMNS = {
    "optimizer.name": "optimizer",
    "optimizer.rho": "rho",
    "label": "label",
    "optimizer.label": "label",
    "status": "status",
    "optimizer": "optimizer",
    "optimizer.base.lr": "lr",
    "model.name": "model",
    "data.name": "data",
    "benchmark": "benchmark",
}


class Jobs:
    """Jobs made through the store, and the test's own record of what each one is."""

    def __init__(self, factory: sessionmaker[Session], seed: int = 0) -> None:
        self.factory, self.rng = factory, random.Random(seed)
        self.record: dict[str, dict[str, Any]] = {}

    def add(self, n: int) -> list[str]:
        ids = []
        with session_scope(self.factory) as session:
            for _ in range(n):
                name, rho = self.rng.choice(RULES)
                optimizer: dict[str, Any] = {"name": name, "label": self.rng.choice([None, "a"])}
                if rho is not None:
                    optimizer["rho"] = rho
                optimizer["base"] = {"lr": self.rng.choice([0.1, 0.01])}
                spec = {
                    "model": {"name": self.rng.choice(["mlp", "linear"])},
                    "data": {"name": self.rng.choice(["digits", "xor"])},
                    "optimizer": optimizer,
                }
                job = create_job(
                    session=session,
                    team_id="t",
                    spec=JobSpec.model_validate(spec),
                    max_attempts=1,
                )
                session.flush()
                ids.append(job.id)
                self.record[job.id] = {
                    "optimizer": name,
                    "rho": rho,
                    "lr": optimizer["base"]["lr"],
                    "label": optimizer["label"],
                    "model": spec["model"]["name"],
                    "data": spec["data"]["name"],
                    "benchmark": None,
                    "status": "queued",
                    "summary": {},
                }
        return ids

    def finish(self, job_id: str, status: str, summary: dict[str, Any]) -> None:
        with session_scope(self.factory) as session:
            assert claim_job(session=session, job_id=job_id, worker_id="w", lease_seconds=60)
            assert finish_job(
                session=session, job_id=job_id, worker_id="w", status=status, summary=summary
            )
        self.record[job_id].update(status=status, summary=summary)

    def random_summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = {"note": "text", "diverged": False, "curve": [1.0, 2.0]}
        for metric, offset in zip(METRICS, (0.0, 1.0, 86400.12), strict=True):
            if self.rng.random() < 0.85:
                summary[metric] = offset + self.rng.random() * (1e-3 if offset > 1e3 else 1.0)
        return summary

    def frame(self) -> pd.DataFrame:
        rows = []
        for job_id, r in self.record.items():
            values = {m: r["summary"].get(m, math.nan) for m in METRICS}
            rows.append({"id": job_id, **{k: v for k, v in r.items() if k != "summary"}, **values})
        return pd.DataFrame(rows)


def _expected(jobs: Jobs, query: ResultsQuery) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The query's groups computed by pandas from the test's record of the jobs."""
    frame = jobs.frame()
    for any_of in query.filters:
        keep = pd.Series(False, index=frame.index)
        for c in any_of:
            column = frame[COLUMNS[".".join(c.field.path)]]
            if c.values == (None,):
                keep |= column.isna()
            elif c.op == "in":
                keep |= column.isin(c.values)
            else:
                test = {"eq": column.eq, "ne": column.ne, "ge": column.ge}[c.op](c.values[0])
                keep |= test & column.notna()
        frame = frame[keep]
    names = [COLUMNS[".".join(f.path) if f.path else f.kind] for f in query.group_by]
    parts = frame.groupby(names, dropna=False) if names else [((), frame)]
    out = {}
    for key, part in parts:
        key = tuple(None if pd.isna(k) else k for k in (key if names else ()))
        metrics = {}
        for m in METRICS:
            x = part[m].dropna()
            n = len(x)
            metrics[m] = {
                "n": n,
                "mean": float(x.mean()) if n else None,
                "std": float(x.std(ddof=1)) if n > 1 else None,
                "min": float(x.min()) if n else None,
                "max": float(x.max()) if n else None,
            }
        out[key] = {"jobs": len(part), "metrics": metrics}
    return out


def _check(factory: sessionmaker[Session], jobs: Jobs) -> None:
    for group_by, filters in QUERIES:
        query = ResultsQuery(team_id="t", group_by=group_by, filters=filters, metrics=METRICS)
        with session_scope(factory) as session:
            got = query_groups_from_cells(session=session, query=query)
            from_json = query_groups_from_json(session=session, query=query)
        assert got is not None, query  # every key and filter here is a cell column
        keys = [tuple(g["key"].values()) for g in got]
        assert keys == [tuple(g["key"].values()) for g in from_json]  # same groups, same order
        want = _expected(jobs, query)
        assert len(keys) == len(want) if group_by else len(keys) == 1
        for key, group in zip(keys, got, strict=True):
            expected = want.get(key, {"jobs": 0, "metrics": {}})
            assert group["jobs"] == expected["jobs"], (query, key)
            for m in METRICS:
                _same(group["metrics"][m], expected["metrics"].get(m), (query, key, m))


def _same(got: dict[str, Any], want: dict[str, Any] | None, where: Any) -> None:
    want = want or {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    assert (got["n"], got["min"], got["max"]) == (want["n"], want["min"], want["max"]), where
    if want["n"] == 0:
        assert got["mean"] is None and got["std"] is None, where
        return
    # n-term float64 sums on both sides; the std subtracts the mean first, so its error is
    # relative to max(|mean|, std) (values near 86400 with a spread of 1e-3 keep 1e-4 of it).
    tol = float_tolerance(ops=max(want["n"], 2))
    assert got["mean"] == pytest.approx(want["mean"], rel=tol), where
    if want["std"] is None:
        assert got["std"] is None, where
    else:
        scale = max(abs(want["mean"]), want["std"])
        assert abs(got["std"] - want["std"]) <= tol * scale, where


def test_the_summary_table_holds_each_finished_jobs_numbers(
    pg_factory: sessionmaker[Session],
) -> None:
    jobs = Jobs(pg_factory)
    done, waiting = jobs.add(2)
    summary = {"acc": 0.91, "steps": 120, "diverged": True, "note": "x", "curve": [1, 2]}
    summary |= {"nested": {"a": 1.0}, "huge": 10**400, "neg": -2.5e-300, "": 1.0}
    jobs.finish(done, "succeeded", summary)
    with session_scope(pg_factory) as session:
        stored = session.scalar(select(Job.summary).where(Job.id == done))
        rows = session.execute(
            select(JobResultMetric.job_id, JobResultMetric.metric, JobResultMetric.value)
        )
        table = {(job_id, metric): value for job_id, metric, value in rows}
    numbers = {
        (done, k): float(v)
        for k, v in stored.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and abs(v) < 1e308 and k
    }
    assert (
        table == numbers == {(done, "acc"): 0.91, (done, "steps"): 120.0, (done, "neg"): -2.5e-300}
    )
    assert not any(job_id == waiting for job_id, _ in table)
    with session_scope(pg_factory) as session:
        cells = dict(session.execute(select(JobResult.job_id, JobResult.status)).all())
    assert cells == {done: "succeeded", waiting: "queued"}


def test_grouped_results_equal_pandas_through_every_change(
    pg_factory: sessionmaker[Session],
) -> None:
    jobs = Jobs(pg_factory)
    ids = jobs.add(160)
    _check(pg_factory, jobs)  # all queued, no metrics
    for job_id in ids[:60]:
        status = jobs.rng.choice(["succeeded", "succeeded", "failed", "cancelled"])
        jobs.finish(job_id, status, jobs.random_summary())
    _check(pg_factory, jobs)
    for job_id in ids[60:120]:  # into cells that have rows now: merged, not recomputed
        status = jobs.rng.choice(["succeeded", "succeeded", "failed", "cancelled"])
        jobs.finish(job_id, status, jobs.random_summary())
    for job_id in ids[120:140]:
        with session_scope(pg_factory) as session:
            claim_job(session=session, job_id=job_id, worker_id="w", lease_seconds=60)
        jobs.record[job_id]["status"] = "running"
    _check(pg_factory, jobs)
    with session_scope(pg_factory) as session:  # summaries rewritten and removed in place
        for job_id in ids[:10]:
            summary = jobs.random_summary()
            session.execute(update(Job).where(Job.id == job_id).values(summary=summary))
            jobs.record[job_id]["summary"] = summary
        session.execute(update(Job).where(Job.id.in_(ids[10:15])).values(summary=None))
        for job_id in ids[10:15]:
            jobs.record[job_id]["summary"] = {}
    for job_id in ids[15:40]:
        with session_scope(pg_factory) as session:
            delete_job(session=session, team_id="t", job_id=job_id)
        del jobs.record[job_id]
    _check(pg_factory, jobs)


def test_concurrent_finishes_and_reads_lose_no_change(
    pg_factory: sessionmaker[Session],
) -> None:
    # Four workers finish jobs of the same few cells while a reader keeps refreshing the
    # cells: no write waits on another or fails, and the cells end equal to the jobs.
    jobs = Jobs(pg_factory, seed=1)
    ids = jobs.add(48)
    summaries = {
        job_id: {"acc": i / 48, "loss": 1.0 + i, "wall": 86400.12 + i * 1e-4}
        for i, job_id in enumerate(ids)
    }
    errors: list[BaseException] = []
    done = threading.Event()
    query = ResultsQuery(team_id="t", group_by=QUERIES[0][0], metrics=METRICS)

    def finish(part: list[str]) -> None:
        try:
            for job_id in part:
                jobs.finish(job_id, "succeeded", summaries[job_id])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def read() -> None:
        try:
            while not done.is_set():
                with session_scope(pg_factory) as session:
                    query_groups_from_cells(session=session, query=query)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    writers = [threading.Thread(target=finish, args=(ids[k::4],)) for k in range(4)]
    reader = threading.Thread(target=read)
    reader.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    reader.join()
    assert errors == []
    _check(pg_factory, jobs)


def test_the_upgrade_backfills_jobs_stored_before_it() -> None:
    # The jobs are written with today's models (columns of later migrations included),
    # then the schema is taken back to 0003 (dropping the result tables and those
    # columns, keeping the jobs) and upgraded again: 0004 must backfill them.
    with temporary_database() as url:
        migrations.upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        jobs = Jobs(factory, seed=2)
        for job_id in jobs.add(40)[:30]:
            with session_scope(factory) as session:
                summary = jobs.random_summary()
                values = {"status": "succeeded", "summary": summary}
                session.execute(update(Job).where(Job.id == job_id).values(**values))
            jobs.record[job_id].update(values)
        engine.dispose()
        migrations.downgrade(url, "0003")
        migrations.upgrade(url)
        engine = make_engine(url)
        _check(make_session_factory(engine), jobs)
        engine.dispose()
