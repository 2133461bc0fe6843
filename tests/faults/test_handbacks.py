"""Graceful hand-backs (a worker stopping for a deploy) spend none of a job's attempts.

Issue 12: two rolling deploys and one crash failed a long job
`exhausted_retries` with one real infrastructure failure. Hand-backs are
counted apart (`handbacks`); only the crash counts against `max_attempts` (3).
"""

from __future__ import annotations

import pytest

from tests.faults.conftest import LONG, kill_group, points, results, submit, wait_job

pytestmark = pytest.mark.slow


def test_two_graceful_handbacks_and_one_crash_leave_the_job_to_succeed(
    client, db, start_worker, reference
):
    job_id = submit(client, LONG)
    step = 0
    for n, end in enumerate(("deploy", "deploy", "crash"), start=1):
        worker = start_worker(f"worker-{end}-{n}")
        # Caught once this attempt has checkpointed past where the last one stopped.
        running = wait_job(
            db,
            job_id,
            lambda j, n=n, s=step: j.attempts == n and j.status == "running" and j.step >= s + 8,
        )
        step = running.step
        if end == "deploy":
            worker.stop(grace=30)  # SIGTERM: checkpoint, give the job back, exit
            back = wait_job(db, job_id, lambda j: j.status != "running")
            assert (back.status, back.handbacks, back.infra_failures) == ("queued", n, 0)
        else:
            kill_group(worker)  # no goodbye: the lease runs out
    start_worker("worker-last")
    done = wait_job(db, job_id, timeout=120)

    assert done.status == "succeeded", done.error
    assert (done.attempts, done.handbacks, done.infra_failures) == (4, 2, 1)
    assert results(done.summary) == reference.summary  # resumed three times, bit for bit
    assert {(n, s): v for n, s, v in points(db, job_id)} == reference.points
