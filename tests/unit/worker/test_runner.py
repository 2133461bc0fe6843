"""The runner without a broker: a claimed job trains and its events become rows (SQLite)."""

from __future__ import annotations

import threading
import time

import torch
from sqlalchemy import select

from store.db import session_scope
from store.models import Artifact, Job, MetricPoint, utcnow
from tests.unit.worker.conftest import TINY, submit
from worker import runner
from worker.heartbeat import StopSignal


def _job(factory, job_id: str) -> Job:
    with session_scope(factory) as session:
        return session.get(Job, job_id)


def test_job_runs_to_succeeded_with_points_checkpoint_and_reproducibility(factory, settings):
    job_id = submit(factory, TINY)

    assert runner.run_job(job_id, settings) == "succeeded"

    job = _job(factory, job_id)
    assert (job.status, job.attempts, job.fraction) == ("succeeded", 1, 1.0)
    assert job.summary["final_test_loss"] is not None
    assert job.summary["wall_seconds"] > 0
    assert job.reproducibility["spec_hash"] == job.spec_hash
    assert job.reproducibility["device"] == "cpu"
    assert job.reproducibility["torch_version"] == torch.__version__
    assert (settings.artifacts_dir / job.checkpoint_path).exists()
    with session_scope(factory) as session:
        names = set(session.scalars(select(MetricPoint.name).where(MetricPoint.job_id == job_id)))
        artifacts = list(session.scalars(select(Artifact.name).where(Artifact.job_id == job_id)))
    assert {"train_loss_step", "test_loss"} <= names
    assert artifacts == ["checkpoint.pt"]


def test_a_job_already_taken_is_not_run_again(factory, settings):
    job_id = submit(factory, TINY)
    runner.run_job(job_id, settings)

    assert runner.run_job(job_id, settings) is None
    assert _job(factory, job_id).attempts == 1


def test_huge_learning_rate_fails_as_diverged(factory, settings):
    spec = {**TINY, "optimizer": {"name": "sgd", "base": {"name": "sgd", "lr": 100.0}}}
    spec["training"] = {**TINY["training"], "epochs": 50}
    job_id = submit(factory, spec)

    assert runner.run_job(job_id, settings) == "failed"

    job = _job(factory, job_id)
    assert job.failure_reason == "diverged"
    assert "diverged at step" in job.error and "optimizer.base.lr" in job.error


def test_missing_data_file_is_a_user_error_naming_it(factory, settings):
    spec = {**TINY, "data": {"name": "npz", "path": "nowhere.npz"}}
    job_id = submit(factory, spec)

    assert runner.run_job(job_id, settings) == "failed"

    job = _job(factory, job_id)
    assert job.failure_reason == "user_error"
    assert "nowhere.npz" in job.error


def test_cancel_request_stops_a_running_job_and_keeps_a_checkpoint(factory, settings):
    spec = {**TINY, "training": {**TINY["training"], "epochs": 5000}}
    job_id = submit(factory, spec)
    threading.Thread(target=_cancel_once_running, args=(factory, job_id), daemon=True).start()

    assert runner.run_job(job_id, settings) == "cancelled"

    job = _job(factory, job_id)
    assert (job.status, job.failure_reason) == ("cancelled", "cancelled")
    assert job.step < job.total_steps
    assert (settings.artifacts_dir / job.checkpoint_path).exists()


def _cancel_once_running(factory, job_id: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with session_scope(factory) as session:
            job = session.get(Job, job_id)
            if job.status == "running" and job.step > 0:
                job.cancel_requested_at = utcnow()
                return
        time.sleep(0.05)


def test_timeout_fails_the_job_with_reason_timeout(factory, settings):
    spec = {**TINY, "training": {**TINY["training"], "epochs": 5000}, "limits": {"timeout_s": 1}}
    job_id = submit(factory, spec)

    assert runner.run_job(job_id, settings) == "failed"

    job = _job(factory, job_id)
    assert job.failure_reason == "timeout"
    assert "limits.timeout_s" in job.error
    assert job.step < job.total_steps


def test_stop_signal_keeps_the_first_reason():
    stop = StopSignal(timeout_s=3600)
    assert not stop()
    stop.set("cancel")
    stop.set("lost")
    assert stop() and stop.reason == "cancel"


def test_a_data_parallel_job_runs_its_ranks_and_rank_0_records(factory, settings):
    job_id = submit(factory, {**TINY, "resources": {"devices": 2}})

    assert runner.run_job(job_id, settings) == "succeeded"

    job = _job(factory, job_id)
    assert (job.status, job.fraction) == ("succeeded", 1.0)
    assert (settings.artifacts_dir / job.checkpoint_path).exists()
    state = torch.load(settings.artifacts_dir / job.checkpoint_path, weights_only=True)
    assert len(state["ranks"]) == 2
    with session_scope(factory) as session:
        names = set(session.scalars(select(MetricPoint.name).where(MetricPoint.job_id == job_id)))
    assert {"train_loss_step", "test_loss"} <= names


def test_cancel_stops_every_rank_of_a_data_parallel_job(factory, settings):
    spec = {**TINY, "training": {**TINY["training"], "epochs": 5000}, "resources": {"devices": 2}}
    job_id = submit(factory, spec)
    threading.Thread(target=_cancel_once_running, args=(factory, job_id), daemon=True).start()

    assert runner.run_job(job_id, settings) == "cancelled"  # returns: no rank left waiting

    job = _job(factory, job_id)
    assert job.step < job.total_steps
    state = torch.load(settings.artifacts_dir / job.checkpoint_path, weights_only=True)
    assert len(state["ranks"]) == 2 and state["counters"]["step"] == job.step


def test_timeout_stops_every_rank_of_a_data_parallel_job(factory, settings):
    spec = {
        **TINY,
        "training": {**TINY["training"], "epochs": 5000},
        "limits": {"timeout_s": 8},
        "resources": {"devices": 2},
    }
    job_id = submit(factory, spec)

    assert runner.run_job(job_id, settings) == "failed"

    job = _job(factory, job_id)
    assert job.failure_reason == "timeout"
    assert job.step < job.total_steps


def test_a_gpu_worker_too_narrow_for_a_job_leaves_it_queued(factory, settings, monkeypatch):
    job_id = submit(factory, {**TINY, "resources": {"devices": 4}})
    with session_scope(factory) as session:
        session.get(Job, job_id).queue = "gpu"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # `flatlab worker --gpus 0,1`

    assert runner.run_job(job_id, settings) is None

    job = _job(factory, job_id)
    assert (job.status, job.attempts) == ("queued", 0)


def test_a_lost_rank_fails_the_attempt_as_infra_lost_naming_the_rank():
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    from sam_core.training.distributed import launch
    from tests.unit.sam_core.distributed import ranks
    from worker.outcomes import from_exception

    try:
        launch(ranks.lost_rank_launched, ("kill", 600.0), 2)  # rank 1 is SIGKILLed at step 3
    except ChildFailedError as exc:
        outcome = from_exception(exc, 3, None)
    else:
        raise AssertionError("the launch did not fail")
    assert (outcome.status, outcome.failure_reason) == ("failed", "infra_lost")
    assert "rank 1 (exit code -9)" in outcome.error
