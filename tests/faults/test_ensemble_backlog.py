"""A backlog of seed-ensemble messages: the reconciler re-sends only what no message carries.

One ensemble message carries up to 32 jobs, so comparing messages with queued
jobs one to one (issue 12: 62 duplicates for a 64-seed benchmark) overcounts
what is missing. The reconciler reads the job ids each message carries.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from flatlab.broker import make_celery
from store.db import session_scope
from store.jobs import cancel_jobs
from store.models import Job
from tests.integration.specs import TINY, spec
from worker.reconciler import broker_job_ids, carried_job_ids, reconcile_once

pytestmark = pytest.mark.slow


def test_a_64_seed_ensemble_backlog_gets_no_duplicate_and_a_lost_message_is_resent_once(
    client, db, broker, fault_settings
):
    body = {"name": "faults-backlog", "base": spec(TINY, name="backlog"), "seeds": list(range(64))}
    response = client.post("/v1/benchmarks", json=body)  # no worker is up: it all waits
    assert response.status_code == 202, response.text
    with session_scope(db) as session:
        ids = set(session.scalars(select(Job.id).where(Job.benchmark_id == response.json()["id"])))
        # An hour unsent by the database's clock: every one is old enough to be re-sent.
        session.execute(
            update(Job)
            .where(Job.id.in_(ids))
            .values(enqueued_at=Job.created_at - timedelta(hours=1))
        )
    assert len(ids) == 64
    app = make_celery(fault_settings)
    deadline = time.monotonic() + 30  # sent once the response is out
    while not ids <= (broker_job_ids(app, "cpu") or set()):
        assert time.monotonic() < deadline, "the benchmark's messages never reached Redis"
        time.sleep(0.05)
    messages = [json.loads(raw) for raw in broker.client.lrange("cpu", 0, -1)]
    ours = [m for m in messages if set(_ids(m)) & ids]
    assert sorted(len(_ids(m)) for m in ours) == [32, 32]  # two ensemble messages
    try:
        report = reconcile_once(db, fault_settings, app)
        assert report.resent == []  # every job is in a message: nothing sent again
        assert broker.client.llen("cpu") == len(messages)

        lost = ours[0]  # the broker loses one ensemble message
        assert broker.client.lrem("cpu", 1, json.dumps(lost)) == 1
        report = reconcile_once(db, fault_settings, app)
        assert sorted(report.resent) == sorted(_ids(lost))  # its 32 jobs, each once
        assert ids <= broker_job_ids(app, "cpu")
        assert reconcile_once(db, fault_settings, app).resent == []
    finally:  # leave no backlog to the next test's workers: each message costs one a process
        with session_scope(db) as session:
            cancel_jobs(session=session, job_ids=list(ids))
        for raw in broker.client.lrange("cpu", 0, -1):
            if set(_ids(json.loads(raw))) <= ids:
                broker.client.lrem("cpu", 1, raw)


def _ids(message: dict) -> list[str]:
    return carried_job_ids(message)
