"""The reconciler: makes the database and the broker agree again after anything is lost.

Two repairs, both idempotent, so any number of reconcilers may run at once:

1. A running job whose lease expired (its worker died, lost power, or was
   partitioned away) goes back to `queued` and is sent to the broker again;
   out of attempts it fails (`store.leases.requeue_expired`).
2. A queued job whose message was lost (the broker restarted without
   persistence, a send failed after commit) is sent again. It is re-sent only
   when the broker holds fewer messages for its queue than the database has
   queued jobs, so a long backlog is not flooded with duplicates; a duplicate
   that does slip through is harmless, as the claim lets only one run.

Every worker process runs it as a thread; `flatlab reconcile --once` runs one pass.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from celery import Celery
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from flatlab.broker import enqueue_job
from flatlab.settings import Settings
from store.db import make_engine, make_session_factory, session_scope
from store.leases import queued_unheld, requeue_expired, touch_enqueued
from store.models import Job, utcnow

log = logging.getLogger(__name__)

_engine: Engine | None = None


@dataclass
class Report:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)


def resend_after(settings: Settings) -> timedelta:
    """How long a queued job waits, unsent, before the reconciler sends it again."""
    return timedelta(seconds=max(30.0, 4 * settings.reconcile_seconds))


def reconcile_once(
    factory: sessionmaker[Session],
    settings: Settings,
    app: Celery,
    *,
    now: datetime | None = None,
) -> Report:
    """One pass of both repairs; returns what it did."""
    now = now or utcnow()
    report = Report()
    with session_scope(factory) as session:
        moved = requeue_expired(session=session, now=now)
    for job in moved:
        if job.status == "queued":
            report.requeued.append(job.job_id)
        else:
            report.failed.append(job.job_id)
    _send(factory, app, [(j.job_id, j.queue) for j in moved if j.status == "queued"], now)
    stale = _lost_messages(factory, app, now - resend_after(settings))
    report.resent = _send(factory, app, stale, now)
    if report.requeued or report.failed or report.resent:
        log.info("reconciled: %s", report)
    return report


def _lost_messages(
    factory: sessionmaker[Session], app: Celery, sent_before: datetime
) -> list[tuple[str, str]]:
    with session_scope(factory) as session:
        stale = queued_unheld(session=session, enqueued_before=sent_before, limit=1000)
        waiting = dict(
            session.execute(
                select(Job.queue, func.count()).where(Job.status == "queued").group_by(Job.queue)
            ).all()
        )
    out = []
    for queue in {q for _, q in stale}:
        depth = broker_depth(app, queue)
        missing = waiting.get(queue, 0) - depth if depth is not None else len(stale)
        out += [item for item in stale if item[1] == queue][: max(missing, 0)]
    return out


def broker_depth(app: Celery, queue: str) -> int | None:
    """Messages waiting in `queue` (None if the broker cannot say)."""
    try:
        with app.connection_for_write() as conn, conn.channel() as channel:
            return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except Exception as exc:
        if "NOT_FOUND" in str(exc) or "no queue" in str(exc).lower():
            return 0
        log.debug("cannot read the depth of queue %s: %s", queue, exc)
        return None


def _send(
    factory: sessionmaker[Session], app: Celery, jobs: list[tuple[str, str]], now: datetime
) -> list[str]:
    sent = []
    for job_id, queue in jobs:
        try:
            enqueue_job(job_id, queue, app=app)
            sent.append(job_id)
        except Exception as exc:
            log.warning("could not send job %s to queue %s: %s", job_id, queue, exc)
    with session_scope(factory) as session:
        touch_enqueued(session=session, job_ids=sent, now=now)
    return sent


class Reconciler(threading.Thread):
    """`reconcile_once` every `settings.reconcile_seconds`, until closed."""

    def __init__(self, settings: Settings, app: Celery, factory: sessionmaker[Session]) -> None:
        super().__init__(name="flatlab-reconciler", daemon=True)
        self.settings, self.app, self.factory = settings, app, factory
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.settings.reconcile_seconds):
            try:
                reconcile_once(self.factory, self.settings, self.app)
            except Exception as exc:  # the database may be away; try again next time
                log.warning("reconcile pass failed: %s", exc)

    def close(self) -> None:
        self._done.set()


def start_reconciler(settings: Settings, app: Celery) -> Reconciler:
    """Start the reconciler thread of a worker's parent process."""
    global _engine
    _engine = make_engine(settings.db_url, pool_size=2, max_overflow=0)
    thread = Reconciler(settings, app, make_session_factory(_engine))
    thread.start()
    return thread


def forget_parent_engine() -> None:
    """In a forked child: drop the parent's pooled connections without closing them."""
    if _engine is not None:
        _engine.dispose(close=False)
