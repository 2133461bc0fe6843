"""A checkpoint the machine cannot write is an infrastructure failure, never the user's.

Issue 12: disk full (ENOSPC) or a read-only artifact folder (EROFS) ended a
job `user_error` with no retry, dropped its summary and left a partial `.tmp`.
Now the attempt removes the partial file and the job goes back to the queue
(`infra_failures` + 1) to resume from its last good checkpoint, or fails
`infra` once out of attempts, with its metric points; a run whose training
had finished keeps its summary. Root ignores file modes, so the failing
writes are simulated in the worker's own process: the runner runs in-process.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest
import torch

import worker.recorder
import worker.runner
from sam_core.spec import JobSpec
from store.db import session_scope
from store.jobs import create_job
from tests.faults.conftest import artifact_files, points, results, wait_job
from tests.integration.specs import TINY, spec
from worker.runner import run_job

pytestmark = pytest.mark.slow

SHORT = spec(TINY, name="faults-storage", **{"training.epochs": 6})  # 24 steps, 4 per epoch


@pytest.fixture(autouse=True)
def _no_resend(monkeypatch):
    """The test runs each retry itself: nothing goes to the broker for a later test's workers."""
    monkeypatch.setattr(worker.runner, "_enqueue_again", lambda *args: None)


def _create(db) -> str:
    with session_scope(db) as session:
        job = create_job(
            session=session, team_id="faults", spec=JobSpec.model_validate(SHORT), max_attempts=3
        )
        return job.id


def _failing(monkeypatch, how: str, from_step: int, to_step: int = 10**9) -> None:
    """Checkpoints of steps in [from_step, to_step] fail: disk full mid-write, or read-only."""
    real_save, real_replace = torch.save, os.replace
    steps: list[int] = []

    def checkpoint(self: Any, event: Any) -> None:
        steps.append(event.step)
        return original(self, event)

    original = worker.recorder.Recorder._checkpoint
    monkeypatch.setattr(worker.recorder.Recorder, "_checkpoint", checkpoint)

    def due() -> bool:
        return bool(steps) and from_step <= steps[-1] <= to_step

    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        if how == "disk full" and due():
            Path(f).write_bytes(b"half a checkpoint")  # what was written before the disk filled
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(f))
        real_save(obj, f, *args, **kwargs)

    def replace(src: Any, dst: Any) -> None:
        if how == "read-only" and due():
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(worker.recorder.torch, "save", save)
    monkeypatch.setattr(worker.recorder.os, "replace", replace)


@pytest.mark.parametrize("how", ["disk full", "read-only"])
def test_checkpoint_failing_mid_run_is_retried_and_resumes_from_the_last_good_one(
    db, fault_settings, monkeypatch, how
):
    job_id = _create(db)
    with monkeypatch.context() as patch:
        _failing(patch, how, from_step=12, to_step=12)  # the third epoch's checkpoint fails
        assert run_job(job_id, fault_settings) == "queued"
    back = wait_job(db, job_id, lambda j: True)
    assert (back.status, back.failure_reason, back.infra_failures) == ("queued", None, 1)
    assert "errno" in back.error and back.checkpoint_path and back.step == 8  # last good one
    assert not [n for n in artifact_files(fault_settings.artifacts_dir, job_id) if ".tmp" in n]
    assert {s for _, s, _ in points(db, job_id)} >= set(range(1, 13))  # kept, up to the failure

    assert run_job(job_id, fault_settings) == "succeeded"  # resumed from step 8
    done = wait_job(db, job_id)
    assert (done.attempts, done.infra_failures, done.error) == (2, 1, None)
    assert done.summary and done.step == 24
    assert {s for _, s, _ in points(db, job_id)} == set(range(1, 25))


def test_storage_that_keeps_failing_fails_the_job_infra_with_its_points(
    db, fault_settings, monkeypatch
):
    job_id = _create(db)
    _failing(monkeypatch, "disk full", from_step=4)
    statuses = [run_job(job_id, fault_settings) for _ in range(3)]  # max_attempts is 3
    assert statuses == ["queued", "queued", "failed"]
    failed = wait_job(db, job_id)
    assert (failed.failure_reason, failed.infra_failures, failed.attempts) == ("infra", 3, 3)
    assert "No space left on device" in failed.error
    assert points(db, job_id)  # the points of the steps it trained are kept
    assert artifact_files(fault_settings.artifacts_dir, job_id) == {}  # nothing partial


def test_a_run_whose_final_checkpoint_fails_keeps_its_summary_and_is_retried(
    db, fault_settings, monkeypatch
):
    job_id = _create(db)
    with monkeypatch.context() as patch:
        _failing(patch, "read-only", from_step=24)  # only the final checkpoint fails
        assert run_job(job_id, fault_settings) == "queued"
    back = wait_job(db, job_id, lambda j: True)
    assert back.summary and "training finished" in back.error  # its summary kept meanwhile
    assert {s for _, s, _ in points(db, job_id)} == set(range(1, 25))
    assert run_job(job_id, fault_settings) == "succeeded"
    done = wait_job(db, job_id)
    assert results(done.summary) == results(back.summary)  # the same run, bit for bit
    assert (done.attempts, done.infra_failures) == (2, 1)
