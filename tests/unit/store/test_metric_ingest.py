"""Metric ingest as the worker writes it: a transaction per batch, replayed after crashes.

Each point must be stored exactly once whatever is replayed, interleaved or
raced, on both backends (PostgreSQL: binary COPY after dropping stored points).
"""

from __future__ import annotations

import random
import threading

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from sam_core.spec import JobSpec
from store.db import session_scope
from store.jobs import create_job, delete_job
from store.metrics import write_metric_points
from store.models import Job, MetricPoint
from worker.transactions import in_transaction

SPEC = {"model": {"name": "mlp"}, "data": {"name": "digits"}, "optimizer": {"name": "sam"}}
Point = tuple[str, int, float, float]


def _job(factory: sessionmaker[Session]) -> str:
    with session_scope(factory) as session:
        spec = JobSpec.model_validate(SPEC)
        return create_job(session=session, team_id="t", spec=spec, max_attempts=1).id


def _points(steps: range, names: tuple[str, ...] = ("loss", "acc", "lr")) -> list[Point]:
    return [(n, s, s / 100, s * 0.5 + len(n)) for s in steps for n in names]


def _write(factory: sessionmaker[Session], job_id: str, points: list[Point]) -> int:
    """One committed transaction, as the worker's recorder writes a batch."""
    return in_transaction(
        factory,
        lambda s: write_metric_points(session=s, job_id=job_id, points=points),
        what="test batch",
    )


def _stored(factory: sessionmaker[Session], job_id: str) -> list[tuple[str, int, float, float]]:
    with session_scope(factory) as session:
        stmt = select(MetricPoint.name, MetricPoint.step, MetricPoint.epoch, MetricPoint.value)
        rows = session.execute(stmt.where(MetricPoint.job_id == job_id))
        return sorted((n, int(s), e, v) for n, s, e, v in rows)


def test_a_replayed_batch_writes_nothing_twice(factory: sessionmaker[Session]) -> None:
    job_id = _job(factory)
    batches = [_points(range(k, k + 100)) for k in range(0, 500, 100)]
    written = [_write(factory, job_id, b) for b in batches]
    replayed = [_write(factory, job_id, b) for b in batches]
    assert written == [300] * 5
    assert replayed == [0] * 5
    assert _stored(factory, job_id) == sorted(p for b in batches for p in b)


def test_mixed_old_and_new_points_store_only_the_new(factory: sessionmaker[Session]) -> None:
    # A worker that crashed mid-run replays from its checkpoint: the batch holds points
    # already stored (some steps, some names), points not yet stored below the last stored
    # step (a gap), later points, and repeats within the batch (the first one counts).
    job_id = _job(factory)
    first = [p for p in _points(range(0, 50)) if p[1] % 7 != 3]  # gaps at steps 3, 10, 17, …
    assert _write(factory, job_id, first) == len(first)
    mixed = _points(range(0, 80))
    mixed += [(n, s, -1.0, -1.0) for n, s, _, _ in _points(range(60, 65))]  # repeats
    random.Random(0).shuffle(mixed)
    want = {(n, s): (n, s, e, v) for n, s, e, v in first}
    for n, s, e, v in mixed:
        want.setdefault((n, s), (n, s, e, v))
    got = _write(factory, job_id, mixed)
    assert got == len(want) - len(first)
    assert _stored(factory, job_id) == sorted(want.values())
    assert _write(factory, job_id, mixed) == 0


def test_batches_of_one_job_raced_from_threads_store_each_point_once(
    factory: sessionmaker[Session],
) -> None:
    # Two attempts of one job (a stale worker and its replacement) writing overlapping
    # batches at once: every point stored once, and the counts they report add up.
    job_id = _job(factory)
    batches = [_points(range(k, k + 60)) for k in range(0, 600, 40)]  # each overlaps the next
    counts: list[int] = []
    errors: list[BaseException] = []

    def writer(order: list[list[Point]]) -> None:
        try:
            counts.extend(_write(factory, job_id, b) for b in order)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(o,)) for o in (batches, batches[::-1])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    want = sorted({p[:2]: p for b in batches for p in b}.values())
    assert _stored(factory, job_id) == want
    assert sum(counts) == len(want)


def test_a_deleted_jobs_points_go_and_late_writes_store_nothing(
    factory: sessionmaker[Session],
) -> None:
    job_id, other = _job(factory), _job(factory)
    _write(factory, job_id, _points(range(10)))
    _write(factory, other, _points(range(10)))
    with session_scope(factory) as session:
        session.execute(update(Job).where(Job.id == job_id).values(status="succeeded"))
        delete_job(session=session, team_id="t", job_id=job_id)
    assert _write(factory, job_id, _points(range(10, 20))) == 0
    assert _stored(factory, job_id) == []
    assert len(_stored(factory, other)) == 30


def test_deleting_job_rows_directly_takes_their_points_on_postgresql(
    factory: sessionmaker[Session],
) -> None:
    job_id, other = _job(factory), _job(factory)
    _write(factory, job_id, _points(range(10)))
    _write(factory, other, _points(range(10)))
    with session_scope(factory) as session:
        if session.get_bind().dialect.name != "postgresql":
            return  # SQLite: store.jobs.delete_job deletes them (above)
        session.execute(delete(Job).where(Job.id == job_id))
    assert _stored(factory, job_id) == []
    assert len(_stored(factory, other)) == 30
