"""The ensemble runner without a broker: each job of a seed ensemble gets its own rows (SQLite)."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from sqlalchemy import select

from store.db import session_scope
from store.models import Job, MetricPoint, utcnow
from tests.tolerance import ensemble_tolerance
from tests.unit.worker.conftest import TINY, submit
from worker import runner
from worker.ensemble_runner import run_ensemble

WALL_TIMES = {"train_seconds", "measure_seconds", "steps_per_second", "wall_seconds"}
# TINY: 2 epochs of 2 steps; sums over at most 16 terms (the batch).
TOLERANCE = ensemble_tolerance(steps=4, width=16)


def _spec(seed: int, **training: Any) -> dict[str, Any]:
    return {**TINY, "training": {**TINY["training"], "seed": seed, **training}}


def _job(factory, job_id: str) -> Job:
    with session_scope(factory) as session:
        return session.get(Job, job_id)


def _points(factory, job_id: str) -> dict[tuple[str, int], float]:
    with session_scope(factory) as session:
        rows = session.scalars(select(MetricPoint).where(MetricPoint.job_id == job_id)).all()
        return {(p.name, p.step): p.value for p in rows}


def _assert_same_rows(factory, ensembled: str, solo: str) -> None:
    mine, theirs = _points(factory, ensembled), _points(factory, solo)
    assert set(mine) == set(theirs) and mine
    for key, value in theirs.items():
        if key[0] not in WALL_TIMES:
            assert math.isclose(mine[key], value, rel_tol=TOLERANCE, abs_tol=TOLERANCE), key
    a, b = _job(factory, ensembled), _job(factory, solo)
    assert (a.status, a.step, a.total_steps) == (b.status, b.step, b.total_steps)
    assert set(a.summary) == set(b.summary) | {"ensemble_size"}
    assert a.summary["ensemble_size"] == 3.0  # its clocks are the ensemble's
    for name in set(b.summary) - WALL_TIMES:
        got, want = a.summary[name], b.summary[name]
        assert math.isclose(got, want, rel_tol=TOLERANCE, abs_tol=TOLERANCE), name


def test_each_job_of_an_ensemble_gets_the_rows_and_summary_of_its_solo_run(factory, settings):
    ensembled = [submit(factory, _spec(seed)) for seed in (0, 1, 2)]
    solo = [submit(factory, _spec(seed)) for seed in (0, 1, 2)]

    assert run_ensemble(ensembled, settings) == dict.fromkeys(ensembled, "succeeded")
    for job_id in solo:
        assert runner.run_job(job_id, settings) == "succeeded"

    for mine, theirs in zip(ensembled, solo, strict=True):
        _assert_same_rows(factory, mine, theirs)
        job = _job(factory, mine)
        assert (settings.artifacts_dir / job.checkpoint_path).exists()
        assert job.reproducibility["ensemble"] == {"size": 3, "job_ids": ensembled}
        assert job.reproducibility["seed"] == _job(factory, theirs).reproducibility["seed"]


def test_cancelling_one_job_of_an_ensemble_leaves_the_others_running(factory, settings):
    long = {"epochs": 400, "log_every_steps": 50, "checkpoint_every_epochs": 200}
    specs = [
        {**_spec(seed, **long), "measure": {**TINY["measure"], "every_epochs": 200}}
        for seed in (0, 1, 2)
    ]
    job_ids = [submit(factory, spec) for spec in specs]
    threading.Thread(target=_cancel_once_running, args=(factory, job_ids[1]), daemon=True).start()

    statuses = run_ensemble(job_ids, settings)

    assert statuses == {job_ids[0]: "succeeded", job_ids[1]: "cancelled", job_ids[2]: "succeeded"}
    cancelled = _job(factory, job_ids[1])
    assert cancelled.step < cancelled.total_steps
    assert (settings.artifacts_dir / cancelled.checkpoint_path).exists()
    solo = submit(factory, specs[2])
    assert runner.run_job(solo, settings) == "succeeded"
    _assert_same_rows(factory, job_ids[2], solo)


def _cancel_once_running(factory, job_id: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with session_scope(factory) as session:
            job = session.get(Job, job_id)
            if job.status == "running":
                job.cancel_requested_at = utcnow()
                return
        time.sleep(0.01)


def test_jobs_that_cannot_ensemble_run_one_by_one(factory, settings):
    narrow = submit(factory, TINY)
    wide = submit(factory, {**TINY, "model": {"name": "one_hidden", "width": 8}})

    assert run_ensemble([narrow, wide], settings) == {narrow: "succeeded", wide: "succeeded"}
    assert "ensemble" not in _job(factory, narrow).reproducibility


def test_a_job_not_queued_is_left_alone(factory, settings):
    taken = submit(factory, TINY)
    other = submit(factory, _spec(1))
    assert runner.run_job(taken, settings) == "succeeded"

    assert run_ensemble([taken, other], settings) == {taken: None, other: "succeeded"}
