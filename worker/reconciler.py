"""The reconciler: makes the database and the broker agree again after anything is lost.

Two repairs, both idempotent, so any number of reconcilers may run at once:

1. A running job whose lease expired (its worker died, lost power, or was
   partitioned away) goes back to `queued` and is sent to the broker again;
   out of attempts it fails (`store.leases.requeue_expired`).
2. A queued job whose message was lost (the broker restarted without
   persistence, a send failed after commit) is sent again. On Redis (and the
   embedded filesystem broker) the reconciler reads the job ids every message
   of the queue carries (waiting, or delivered and not yet acknowledged): a
   seed-ensemble message carries up to 32 jobs, so messages and jobs are not
   one to one. Only jobs that no message carries are sent. On another broker,
   or a queue longer than `PEEK_LIMIT` messages, it falls back to counting
   messages. A duplicate that
   does slip through is harmless, as the claim lets only one run.

Time is the database's: one pass reads `now()` once and judges leases and
send stamps by it, so a host whose clock is off re-queues nothing early.

Every worker process runs it as a thread; `flatlab reconcile --once` runs one pass.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from celery import Celery
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from flatlab.broker import RUN_ENSEMBLE_TASK, RUN_JOB_TASK, enqueue_job
from flatlab.settings import Settings
from store.db import make_engine, make_session_factory, session_scope
from store.leases import queued_unheld, requeue_expired, touch_enqueued
from store.models import Job
from store.workers import database_now

log = logging.getLogger(__name__)

PEEK_LIMIT = 20_000  # messages of one queue read to learn which jobs they carry

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
    """One pass of both repairs; returns what it did. `now`: the database's clock unless given."""
    report = Report()
    with session_scope(factory) as session:
        now = now or database_now(session)
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
        here = [item for item in stale if item[1] == queue]
        carried = broker_job_ids(app, queue)
        if carried is not None:
            out += [item for item in here if item[0] not in carried]
            continue
        depth = broker_depth(app, queue)
        missing = waiting.get(queue, 0) - depth if depth is not None else len(stale)
        out += here[: max(missing, 0)]
    return out


def broker_job_ids(app: Celery, queue: str) -> set[str] | None:
    """Every job id the messages of `queue` carry, waiting or delivered but unacknowledged.

    Reads Redis directly (kombu keeps a queue as a list, per priority, and the
    unacknowledged messages in the `unacked` hash), or the filesystem broker's
    folder (embedded; there a message a worker holds is no longer on disk).
    None when the broker is another, cannot be read, or holds more than
    `PEEK_LIMIT` messages there.
    """
    url = str(app.conf.broker_url or "")
    try:
        if url.startswith(("redis", "rediss")):
            payloads = _redis_payloads(app, queue)
        elif url.startswith("filesystem"):
            payloads = _folder_payloads(app, queue)
        else:
            return None
    except Exception as exc:
        log.debug("cannot read the messages of queue %s: %s", queue, exc)
        return None
    if payloads is None:
        return None
    ids: set[str] = set()
    for payload in payloads:
        ids.update(carried_job_ids(payload))
    return ids


def _redis_payloads(app: Celery, queue: str) -> list[dict[str, object]] | None:
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        client = channel.client
        keys = [channel._q_for_pri(queue, pri) for pri in channel.priority_steps]
        if sum(int(client.llen(key)) for key in keys) > PEEK_LIMIT:
            return None
        payloads = [json.loads(raw) for key in keys for raw in client.lrange(key, 0, -1)]
        for raw in client.hvals(channel.unacked_key):
            payload, _exchange, routing_key = json.loads(raw)
            if routing_key == queue:
                payloads.append(payload)
    return payloads


def _folder_payloads(app: Celery, queue: str) -> list[dict[str, object]] | None:
    folder = (app.conf.broker_transport_options or {}).get("data_folder_in")
    if not folder:
        return None
    names = [n for n in os.listdir(folder) if n.partition(".")[2] == f"{queue}.msg"]
    if len(names) > PEEK_LIMIT:
        return None
    payloads = []
    for name in names:
        try:
            payloads.append(json.loads(Path(folder, name).read_text()))
        except (OSError, ValueError):  # taken by a worker meanwhile
            continue
    return payloads


def carried_job_ids(payload: dict[str, object]) -> list[str]:
    """The job ids one Celery message (protocol 2, JSON) carries; [] for any other message."""
    try:
        headers = payload.get("headers") or {}
        body = str(payload["body"])
        properties = payload.get("properties") or {}
        if isinstance(properties, dict) and properties.get("body_encoding") == "base64":
            body = base64.b64decode(body).decode()
        args = json.loads(body)[0]
        task = headers.get("task") if isinstance(headers, dict) else None
    except (KeyError, IndexError, TypeError, ValueError):
        return []
    if task == RUN_JOB_TASK:
        return [str(args[0])]
    if task == RUN_ENSEMBLE_TASK:
        return [str(job_id) for job_id in args[0]]
    return []


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
