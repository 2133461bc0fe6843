"""The fence: only the attempt that holds a job writes; hand-backs spend no attempt;
an infrastructure failure is retried, then fails `infra`; leases use the database's clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from store.db import session_scope
from store.leases import LeaseLost, hold, release_job, requeue_expired, retry_job
from store.metrics import write_metric_points
from store.models import MetricPoint, utcnow
from store.workers import database_now
from tests.unit.store.test_leases import _claim, _get, _job

POINTS = [("train_loss", 1, 0.1, 0.5)]


def test_points_of_the_holder_are_written_and_a_stale_attempts_refused(factory):
    job_id = _job(factory)
    _claim(factory, job_id, "attempt-1", lease_seconds=-1)  # its lease is already out
    with session_scope(factory) as session:
        requeue_expired(session=session)
    _claim(factory, job_id, "attempt-2")

    with pytest.raises(LeaseLost), session_scope(factory) as session:
        write_metric_points(session=session, job_id=job_id, points=POINTS, holder="attempt-1")
    with session_scope(factory) as session:
        assert session.query(MetricPoint).count() == 0
        new = write_metric_points(session=session, job_id=job_id, points=POINTS, holder="attempt-2")
    assert new == 1


def test_a_finished_job_is_held_by_no_one(factory):
    job_id = _job(factory)
    _claim(factory, job_id, "w1")
    with session_scope(factory) as session:
        hold(session=session, job_id=job_id, worker_id="w1")
        retry_job(session=session, job_id=job_id, worker_id="w1", error="disk full")
    with pytest.raises(LeaseLost), session_scope(factory) as session:
        hold(session=session, job_id=job_id, worker_id="w1")


def test_hand_backs_spend_no_attempt(factory):
    job_id = _job(factory, max_attempts=1)
    for _ in range(3):  # three deploys in a row
        _claim(factory, job_id, "w")
        with session_scope(factory) as session:
            assert release_job(session=session, job_id=job_id, worker_id="w")
    _claim(factory, job_id, "w", lease_seconds=-1)  # and then its worker dies
    with session_scope(factory) as session:
        moved = requeue_expired(session=session)
    job = _get(factory, job_id)
    assert [m.status for m in moved] == ["failed"]  # its one real attempt is spent
    assert (job.attempts, job.handbacks, job.infra_failures) == (4, 3, 1)
    assert job.failure_reason == "infra_lost" and "1 of its attempts" in job.error


def test_infrastructure_failures_are_retried_then_fail_infra_keeping_the_summary(factory):
    job_id = _job(factory, max_attempts=2)
    statuses = []
    for _ in range(2):
        _claim(factory, job_id, "w")
        with session_scope(factory) as session:
            statuses.append(
                retry_job(
                    session=session, job_id=job_id, worker_id="w", error="ENOSPC", summary={"a": 1}
                )
            )
    job = _get(factory, job_id)
    assert statuses == ["queued", "failed"]
    assert (job.status, job.failure_reason, job.infra_failures) == ("failed", "infra", 2)
    assert job.summary == {"a": 1} and job.error == "ENOSPC" and job.finished_at is not None


def test_a_lease_is_stamped_by_the_database_clock(factory):
    job_id = _job(factory)
    _claim(factory, job_id, "w", lease_seconds=30)
    with session_scope(factory) as session:
        db_now = database_now(session)
    job = _get(factory, job_id)
    expires = job.lease_expires_at
    expires = expires if expires.tzinfo else expires.replace(tzinfo=db_now.tzinfo)
    # SQLite's clock is this host's; PostgreSQL's is the server's: both agree here.
    assert abs((expires - db_now) - timedelta(seconds=30)) < timedelta(seconds=5)
    assert abs(db_now - utcnow()) < timedelta(seconds=5)


def test_a_connection_ended_for_idling_in_its_transaction_reads_as_a_lost_lease() -> None:
    # Worker sessions set idle_in_transaction_session_timeout to the lease length: an
    # attempt frozen inside a transaction comes back to this error, and must stop.
    import time as _time

    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError

    from store.leases import idled_out
    from tests.pg import temporary_database

    with temporary_database() as url:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SET idle_in_transaction_session_timeout = 100"))
                conn.execute(sa.text("SELECT 1"))
                _time.sleep(0.5)
                try:
                    conn.execute(sa.text("SELECT 1"))
                except SQLAlchemyError as exc:
                    assert idled_out(exc)
                else:
                    raise AssertionError("the idle transaction was not ended")
            with engine.connect() as conn:
                try:
                    conn.execute(sa.text("SELECT 1/0"))
                except SQLAlchemyError as exc:
                    assert not idled_out(exc)
        finally:
            engine.dispose()
