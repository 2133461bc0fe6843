"""Failures named for what they are: host OOM is `oom` with its size, storage is `infra`."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

import worker.outcomes
from sam_core.spec import JobSpec
from sam_core.training.events import Finished
from store.leases import LeaseLost
from worker.outcomes import from_exception, from_finished
from worker.recorder import StorageFailure

SPEC = JobSpec.model_validate(
    {"model": {"name": "linear"}, "data": {"name": "teacher_student"}, "optimizer": {"name": "sgd"}}
)


@pytest.mark.parametrize(
    ("message", "size"),
    [
        (
            "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: "
            "you tried to allocate 8589934592 bytes.",
            "8 GiB",
        ),
        (
            "DefaultCPUAllocator: can't allocate memory: you tried to allocate 1536 bytes. "
            "Error code 12 (Cannot allocate memory)",
            "1.5 KiB",
        ),
    ],
)
def test_host_out_of_memory_from_torch_is_oom_with_the_size_asked_for(message, size):
    outcome = from_exception(RuntimeError(message), 7, SPEC)
    assert (outcome.status, outcome.failure_reason) == ("failed", "oom")
    assert f"asked for {size}" in outcome.error and "step 7" in outcome.error


def test_a_real_host_allocation_failure_is_oom():
    try:
        torch.empty(2**62, dtype=torch.uint8)  # 4 EiB: no host has it
    except RuntimeError as exc:
        outcome = from_exception(exc, 0, SPEC)
    assert outcome.failure_reason == "oom" and "asked for" in outcome.error


def test_cuda_out_of_memory_names_the_size_asked_for():
    exc = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0)")
    outcome = from_exception(exc, 3, SPEC)
    assert outcome.failure_reason == "oom" and "asked for 2 GiB" in outcome.error


def test_other_runtime_errors_stay_the_users():
    assert from_exception(RuntimeError("shape mismatch"), 0, SPEC).failure_reason == "user_error"


def test_storage_failure_is_retried_as_infrastructure_and_a_lost_lease_writes_nothing():
    full = StorageFailure(Path("/a/checkpoint.pt"), OSError(errno.ENOSPC, "No space left"))
    outcome = from_exception(full, 5, SPEC)
    assert (outcome.status, outcome.failure_reason) == ("retry", "infra")
    assert "No space left" in outcome.error and "errno 28" in outcome.error
    assert from_exception(LeaseLost("j", "w"), 5, SPEC).status == "lost"


def test_sigterm_is_a_hand_back_only_while_the_worker_is_stopping(monkeypatch):
    stopped = Finished(status="stopped", step=9, summary={})
    assert from_finished(stopped, "shutdown", SPEC).status == "requeue"  # a deploy
    monkeypatch.setattr(worker.outcomes, "graceful", lambda: False)  # Celery's cancel
    outcome = from_finished(stopped, "shutdown", SPEC)
    assert (outcome.status, outcome.failure_reason) == ("retry", "infra")
    assert "broker connection" in outcome.error
