"""Metric points: bulk writes are idempotent on (job_id, name, step) on both backends."""

from __future__ import annotations

import math

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sam_core.spec import JobSpec
from store.db import session_scope
from store.jobs import create_job
from store.metrics import read_metric_points, write_metric_points
from store.models import MetricPoint

SPEC = {"model": {"name": "mlp"}, "data": {"name": "digits"}, "optimizer": {"name": "sgd"}}


def _job(factory: sessionmaker[Session]) -> str:
    with session_scope(factory) as session:
        job = create_job(
            session=session, team_id="t", spec=JobSpec.model_validate(SPEC), max_attempts=3
        )
        return job.id


def _points(n: int) -> list[tuple[str, int, float, float]]:
    return [(name, step, step / 10, float(step)) for step in range(n) for name in ("a", "b")]


def test_writing_the_same_points_twice_stores_them_once(factory: sessionmaker[Session]) -> None:
    job_id = _job(factory)
    with session_scope(factory) as session:
        first = write_metric_points(session=session, job_id=job_id, points=_points(3000))
    with session_scope(factory) as session:
        again = write_metric_points(session=session, job_id=job_id, points=_points(3100))
    with session_scope(factory) as session:
        stored = session.scalar(select(func.count()).select_from(MetricPoint))
    assert (first, again, stored) == (6000, 200, 6200)


def test_read_filters_by_name_and_step_in_step_order(factory: sessionmaker[Session]) -> None:
    job_id = _job(factory)
    with session_scope(factory) as session:
        write_metric_points(session=session, job_id=job_id, points=reversed(_points(10)))
        points = read_metric_points(session=session, job_id=job_id, names=["b"], since_step=7)
    assert [(p.name, p.step, p.value) for p in points] == [("b", s, float(s)) for s in (7, 8, 9)]


def test_nan_is_stored_as_null_and_infinity_kept(factory: sessionmaker[Session]) -> None:
    job_id = _job(factory)
    with session_scope(factory) as session:
        points = [("loss", 1, 0.1, math.nan), ("loss", 2, 0.2, math.inf)]
        write_metric_points(session=session, job_id=job_id, points=points)
        values = [p.value for p in read_metric_points(session=session, job_id=job_id)]
    assert values == [None, math.inf]


def test_read_after_id_returns_only_newer_points(factory: sessionmaker[Session]) -> None:
    job_id = _job(factory)
    with session_scope(factory) as session:
        write_metric_points(session=session, job_id=job_id, points=_points(2))
        first = read_metric_points(session=session, job_id=job_id, after_id=0)
        write_metric_points(session=session, job_id=job_id, points=_points(3))
        newer = read_metric_points(session=session, job_id=job_id, after_id=first[-1].id)
    assert [(p.name, p.step) for p in newer] == [("a", 2), ("b", 2)]
