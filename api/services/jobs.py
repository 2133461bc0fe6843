"""Submitting a job: validate once, honour Idempotency-Key, enqueue only after commit.

An Idempotency-Key is unique per team (a database constraint), so concurrent
retries of one request create one job: the loser of the race rolls back to its
savepoint and reads the winner's row. A key lives as long as its job, which is
longer than the 24 hours the IETF draft asks for.
"""

from __future__ import annotations

import hashlib
import json
import logging

from celery import Celery
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api.services.datasets import check_dataset_access
from flatlab.broker import enqueue_ensemble, enqueue_job
from flatlab.settings import Settings
from sam_core.spec import JobSpec
from store.db import session_scope
from store.errors import Conflict, IdempotencyKeyReused
from store.jobs import create_job, find_job_by_idempotency_key, mark_enqueued
from store.models import Job

log = logging.getLogger(__name__)


def request_fingerprint(spec: JobSpec) -> str:
    """SHA-256 of the whole validated spec, defaults filled (so `{}` and defaults agree)."""
    text = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def submit_job(
    *,
    session: Session,
    settings: Settings,
    team_id: str,
    spec: JobSpec,
    idempotency_key: str | None = None,
) -> tuple[Job, bool]:
    """The job for this request and whether it is new (False: a replay of an earlier request)."""
    check_dataset_access(session=session, team_id=team_id, specs=[spec])
    fingerprint = request_fingerprint(spec) if idempotency_key else None
    if idempotency_key:
        earlier = find_job_by_idempotency_key(session=session, team_id=team_id, key=idempotency_key)
        if earlier is not None:
            return _replay(earlier, fingerprint), False
    try:
        with session.begin_nested():
            job = create_job(
                session=session,
                team_id=team_id,
                spec=spec,
                max_attempts=settings.max_attempts,
                idempotency_key=idempotency_key,
                request_hash=fingerprint,
                auto_queue=settings.auto_queue,
            )
    except IntegrityError:
        if not idempotency_key:
            raise
        earlier = find_job_by_idempotency_key(session=session, team_id=team_id, key=idempotency_key)
        if earlier is None:
            raise Conflict("a request with this Idempotency-Key is in progress") from None
        return _replay(earlier, fingerprint), False
    return job, True


def _replay(job: Job, fingerprint: str | None) -> Job:
    if job.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request body",
            job_id=job.id,
        )
    return job


def enqueue_after_commit(
    celery: Celery, factory: sessionmaker[Session], job_id: str, queue: str
) -> None:
    """Send the job id to the broker; if that fails the job stays queued for the reconciler."""
    enqueue_group_after_commit(celery, factory, [job_id], queue)


def enqueue_group_after_commit(
    celery: Celery, factory: sessionmaker[Session], job_ids: list[str], queue: str
) -> None:
    """Send one job id, or a group to train as one seed ensemble, then mark them enqueued.

    If the broker refuses, the jobs stay queued with no `enqueued_at` and the
    reconciler sends each of them later, one by one: nothing accepted is lost.
    """
    try:
        if len(job_ids) == 1:
            enqueue_job(job_ids[0], queue, app=celery)
        else:
            enqueue_ensemble(job_ids, queue, app=celery)
    except Exception:
        log.warning("could not enqueue jobs %s; the reconciler will", job_ids, exc_info=True)
        return
    try:
        with session_scope(factory) as session:
            for job_id in job_ids:
                mark_enqueued(session=session, job_id=job_id)
    except Exception:
        log.warning("jobs %s enqueued but enqueued_at not recorded", job_ids, exc_info=True)
