"""Submitting a job: validate once, honour Idempotency-Key, enqueue only after commit.

A job whose data files are missing is refused here (422), and a queued job
whose queue no live worker consumes says so in `waiting_reason`.

An Idempotency-Key is unique per team (a database constraint), so concurrent
retries of one request create one job: the loser of the race rolls back to its
savepoint and reads the winner's row. A key lives as long as its job, which is
longer than the 24 hours the IETF draft asks for.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable

from celery import Celery
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api.schemas import JobPublic
from api.services.datasets import check_dataset_access
from flatlab.broker import enqueue_ensemble, enqueue_job
from flatlab.settings import Settings
from sam_core.data.files import check_data_files
from sam_core.spec import JobSpec
from store.db import session_scope
from store.errors import Conflict, IdempotencyKeyReused, Unprocessable
from store.jobs import create_job, find_job_by_idempotency_key, mark_enqueued
from store.models import Job
from store.workers import live_queues, live_widths, resolve_auto_queue, waiting_reason

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
    check_data_present(settings, [spec])
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
                auto_queue=auto_queue_now(session, settings),
            )
    except IntegrityError:
        if not idempotency_key:
            raise
        earlier = find_job_by_idempotency_key(session=session, team_id=team_id, key=idempotency_key)
        if earlier is None:
            raise Conflict("a request with this Idempotency-Key is in progress") from None
        return _replay(earlier, fingerprint), False
    return job, True


def check_data_present(settings: Settings, specs: Iterable[JobSpec]) -> None:
    """422 naming `data.path` / `data.name` when a spec's data files are not in the data folder.

    Off with `FLATLAB_CHECK_DATA_ON_SUBMIT=false`, where the API cannot see the
    workers' data folder; the worker then reports a missing file as a user error.
    """
    if not settings.check_data_on_submit:
        return
    for spec in specs:
        missing = check_data_files(spec.data, settings.datasets_dir)
        if missing is not None:
            field, message = missing
            raise Unprocessable(message, errors=[{"loc": field, "msg": message}])


def live_queue_map(session: Session, settings: Settings) -> dict[str, list[str]]:
    """Each queue → the live workers consuming it (`store.workers`)."""
    return live_queues(session=session, stale_seconds=settings.worker_stale_seconds)


def auto_queue_now(session: Session, settings: Settings) -> str:
    """The queue a `training.device: auto` job goes to now (`FLATLAB_AUTO_QUEUE`)."""
    return resolve_auto_queue(settings.auto_queue, live_queue_map(session, settings))


def public_jobs(session: Session, settings: Settings, jobs: Iterable[Job]) -> list[JobPublic]:
    """Jobs as the API shows them; a queued job no live worker consumes says so."""
    jobs = list(jobs)
    queued = any(j.status == "queued" for j in jobs)
    live = live_queue_map(session, settings) if queued else {}
    stale = settings.worker_stale_seconds
    widths = live_widths(session=session, stale_seconds=stale) if queued else {}
    return [
        JobPublic.from_job(j, waiting_reason(j.queue, live, devices=_devices(j), widths=widths))
        for j in jobs
    ]


def _devices(job: Job) -> int:
    """The job's `resources.devices` (1 for specs without the section)."""
    resources = job.spec.get("resources") if isinstance(job.spec, dict) else None
    return int(resources.get("devices", 1)) if isinstance(resources, dict) else 1


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
