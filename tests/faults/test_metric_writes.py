"""A metric write the database cuts short is retried like any other write, and stored once.

Metric points go in through psycopg's COPY on the raw driver connection, past
SQLAlchemy; a failure there must still read as a transient database error to
the worker's retry loop, not as a crash that fails the job.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import text

from sam_core.spec import JobSpec
from store.db import session_scope
from store.jobs import create_job
from store.metrics import write_metric_points
from tests.faults.conftest import points
from tests.integration.specs import TINY
from worker.transactions import in_transaction


def test_metric_write_cancelled_by_the_server_is_retried_and_stored_once(db):
    with session_scope(db) as session:
        job = create_job(
            session=session,
            team_id="faults",
            spec=JobSpec.model_validate(TINY),
            max_attempts=3,
            auto_queue="cpu",
        )
    batch = [("train_loss", step, 0.0, 1.0 / step) for step in range(1, 51)]
    outcome: dict[str, object] = {}

    def write() -> None:
        try:
            outcome["new"] = in_transaction(
                db,
                lambda s: write_metric_points(session=s, job_id=job.id, points=batch),
                what="writing points",
                first_delay=0.05,
            )
        except Exception as exc:  # what the recorder would see
            outcome["error"] = exc

    # An operator's migration holds the table; the writer waits on it and is cancelled
    # (pg_cancel_backend, a statement timeout, a failover tool): the server aborts the write.
    with db() as admin, db() as locker:
        locker.execute(text("LOCK TABLE metric_points IN ACCESS EXCLUSIVE MODE"))
        writer = threading.Thread(target=write)
        writer.start()
        pid = _wait_for_backend_blocked_on_lock(admin)
        admin.execute(text("SELECT pg_cancel_backend(:pid)"), {"pid": pid})
        admin.commit()
        time.sleep(0.2)  # let the cancelled statement fail before the table is free
        locker.rollback()
        writer.join(timeout=30)

    assert "error" not in outcome, repr(outcome.get("error"))
    assert outcome["new"] == len(batch)
    assert sorted((n, s) for n, s, _ in points(db, job.id)) == [(n, s) for n, s, _, _ in batch]


def _wait_for_backend_blocked_on_lock(admin, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    query = text(
        "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND query LIKE '%FROM metric_points%'"
    )
    while time.monotonic() < deadline:
        pid = admin.execute(query).scalar()
        admin.commit()
        if pid is not None:
            return int(pid)
        time.sleep(0.05)
    raise TimeoutError("the metric write never waited on the lock")
