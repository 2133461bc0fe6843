"""A frozen attempt that wakes after its job finished elsewhere writes nothing, and exits.

The split brain of issue 12: a worker frozen (SIGSTOP) past its lease, resumed
once another worker had finished the job, used to overwrite the finished
job's checkpoint, its artifact row and insert metric points. Every write of
an attempt is fenced by its worker id now, so the stale one is refused at its
first write and ends.
"""

from __future__ import annotations

import os
import signal
import sys

import pytest

from tests.faults.conftest import (
    LONG,
    artifact_files,
    kill_group,
    stored_rows,
    submit,
    wait_job,
)
from tests.integration.conftest import Process

pytestmark = pytest.mark.slow


def test_attempt_frozen_past_its_lease_changes_nothing_of_the_finished_job(
    client, db, fault_env, fault_settings, log_dir, start_worker
):
    job_id = submit(client, LONG)  # no worker is up: the message waits in Redis
    argv = [sys.executable, "-m", "tests.faults.attempt", job_id]
    stale = Process("attempt-stale", argv, fault_env, log_dir)
    try:
        wait_job(db, job_id, lambda j: j.checkpoint_path is not None and j.step >= 40)
        os.killpg(stale.popen.pid, signal.SIGSTOP)  # frozen mid-run, holding the job

        start_worker("worker-successor")  # its reconciler re-queues the job once the lease is out
        done = wait_job(db, job_id)
        assert (done.status, done.attempts, done.infra_failures) == ("succeeded", 2, 1), done.error
        files, rows = artifact_files(fault_settings.artifacts_dir, job_id), stored_rows(db, job_id)
        assert "checkpoint.pt" in files and rows["points"]

        os.killpg(stale.popen.pid, signal.SIGCONT)
        ended = stale.popen.wait(timeout=60)  # it ends on its own, at once
        assert ended == 0, "\n".join(stale.log().splitlines()[-40:])
        assert "no longer holds it" in stale.log() or "lease lost" in stale.log()
        assert "attempt ended: None" in stale.log()  # it recorded no outcome

        assert artifact_files(fault_settings.artifacts_dir, job_id) == files  # byte for byte
        assert stored_rows(db, job_id) == rows  # status, summary, artifact rows, every point
    finally:
        kill_group(stale)  # never left frozen behind a failed assertion
