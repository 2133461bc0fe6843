"""Leases: one claim wins, only the holder writes, terminal states stay, lost jobs come back."""

from __future__ import annotations

from datetime import timedelta

from sam_core.spec import JobSpec
from store.db import session_scope
from store.jobs import create_job
from store.leases import (
    cancel_if_requested,
    claim_job,
    finish_job,
    queued_unheld,
    release_job,
    renew_lease,
    requeue_expired,
    update_progress,
)
from store.models import Job, utcnow

SPEC = {
    "model": {"name": "linear"},
    "data": {"name": "teacher_student"},
    "optimizer": {"name": "sgd"},
}


def _job(factory, max_attempts: int = 3) -> str:
    with session_scope(factory) as session:
        job = create_job(
            session=session,
            team_id="t",
            spec=JobSpec.model_validate(SPEC),
            max_attempts=max_attempts,
        )
        return job.id


def _claim(factory, job_id, worker_id="w1", lease_seconds=30.0):
    with session_scope(factory) as session:
        return claim_job(
            session=session, job_id=job_id, worker_id=worker_id, lease_seconds=lease_seconds
        )


def _get(factory, job_id) -> Job:
    with session_scope(factory) as session:
        return session.get(Job, job_id)


def test_second_claim_of_a_job_gets_nothing(factory):
    job_id = _job(factory)

    first, second = _claim(factory, job_id, "w1"), _claim(factory, job_id, "w2")

    assert (first.status, first.attempts, first.worker_id) == ("running", 1, "w1")
    assert second is None


def test_only_the_holder_renews_writes_and_finishes(factory):
    job_id = _job(factory)
    _claim(factory, job_id, "w1")
    with session_scope(factory) as session:
        assert (
            renew_lease(session=session, job_id=job_id, worker_id="w2", lease_seconds=30).held
            is False
        )
        assert not update_progress(
            session=session, job_id=job_id, worker_id="w2", step=5, epoch=1.0, fraction=0.5
        )
        assert not finish_job(session=session, job_id=job_id, worker_id="w2", status="failed")
        assert renew_lease(session=session, job_id=job_id, worker_id="w1", lease_seconds=30).held
        assert finish_job(
            session=session, job_id=job_id, worker_id="w1", status="succeeded", summary={"a": 1.0}
        )
    job = _get(factory, job_id)
    assert (job.status, job.summary, job.lease_expires_at) == ("succeeded", {"a": 1.0}, None)


def test_terminal_status_never_changes(factory):
    job_id = _job(factory)
    _claim(factory, job_id, "w1")
    with session_scope(factory) as session:
        finish_job(session=session, job_id=job_id, worker_id="w1", status="cancelled")
    with session_scope(factory) as session:
        assert not finish_job(session=session, job_id=job_id, worker_id="w1", status="succeeded")
        assert not release_job(session=session, job_id=job_id, worker_id="w1")
        assert requeue_expired(session=session, now=utcnow() + timedelta(days=1)) == []
    assert _claim(factory, job_id, "w2") is None
    assert _get(factory, job_id).status == "cancelled"


def test_heartbeat_reports_a_cancel_request(factory):
    job_id = _job(factory)
    _claim(factory, job_id, "w1")
    with session_scope(factory) as session:
        session.get(Job, job_id).cancel_requested_at = utcnow()
    with session_scope(factory) as session:
        state = renew_lease(session=session, job_id=job_id, worker_id="w1", lease_seconds=30)
    assert state.held and state.cancel_requested


def test_expired_lease_requeues_then_fails_out_of_attempts(factory):
    job_id = _job(factory, max_attempts=2)
    later = utcnow() + timedelta(seconds=60)
    _claim(factory, job_id, "w1", lease_seconds=10)
    with session_scope(factory) as session:
        moved = requeue_expired(session=session, now=later)
    assert [(m.job_id, m.status) for m in moved] == [(job_id, "queued")]
    job = _get(factory, job_id)
    assert (job.status, job.worker_id, job.infra_failures) == ("queued", None, 1)

    _claim(factory, job_id, "w2", lease_seconds=10)
    with session_scope(factory) as session:
        moved = requeue_expired(session=session, now=later)
    job = _get(factory, job_id)
    assert (job.status, job.failure_reason, job.attempts) == ("failed", "exhausted_retries", 2)
    assert "w2" in job.error


def test_live_lease_is_not_requeued(factory):
    job_id = _job(factory)
    _claim(factory, job_id, "w1", lease_seconds=60)
    with session_scope(factory) as session:
        assert requeue_expired(session=session, now=utcnow()) == []


def test_single_attempt_job_lost_is_infra_lost(factory):
    job_id = _job(factory, max_attempts=1)
    _claim(factory, job_id, "w1", lease_seconds=1)
    with session_scope(factory) as session:
        requeue_expired(session=session, now=utcnow() + timedelta(seconds=5))
    assert _get(factory, job_id).failure_reason == "infra_lost"


def test_released_job_can_be_claimed_again(factory):
    job_id = _job(factory)
    _claim(factory, job_id, "w1")
    with session_scope(factory) as session:
        assert release_job(session=session, job_id=job_id, worker_id="w1")
    again = _claim(factory, job_id, "w2")
    assert (again.attempts, again.worker_id) == (2, "w2")


def test_queued_job_with_a_cancel_request_is_cancelled_not_claimed(factory):
    job_id = _job(factory)
    with session_scope(factory) as session:
        session.get(Job, job_id).cancel_requested_at = utcnow()
    assert _claim(factory, job_id) is None
    with session_scope(factory) as session:
        assert cancel_if_requested(session=session, job_id=job_id)
    assert _get(factory, job_id).status == "cancelled"


def test_queued_unheld_lists_jobs_not_sent_recently(factory):
    job_id = _job(factory)
    with session_scope(factory) as session:
        assert queued_unheld(session=session, enqueued_before=utcnow() - timedelta(hours=1)) == []
        found = queued_unheld(session=session, enqueued_before=utcnow() + timedelta(seconds=1))
    assert found == [(job_id, "cpu")]
