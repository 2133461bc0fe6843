"""How a run ended, in the job's terms: a status, a reason, and a message a person can act on.

One table for the whole worker: the trainer's `Finished` and the stop signal's
reason on one side, any exception training raised on the other, and on the
far side `succeeded`, `failed` (with a `failure_reason`), `cancelled`, or
`requeue` (a graceful hand-back: the job goes back to the queue, spending no
attempt), `retry` (an infrastructure failure: back to the queue as a counted
failure, or `failed` with `infra` once out of attempts) or `lost` (another
attempt holds the job; write nothing).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import pydantic
import torch
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

from sam_core.spec import JobSpec
from sam_core.training.events import Finished
from store.leases import LeaseLost
from worker.heartbeat import graceful
from worker.recorder import StorageFailure

# torch's CPU allocator raises a plain RuntimeError: "DefaultCPUAllocator: can't allocate
# memory: you tried to allocate 8000000000 bytes" (or "not enough memory: …").
_HOST_OOM = re.compile(r"DefaultCPUAllocator|not enough memory|can't allocate memory", re.I)
_ASKED = re.compile(r"tried to allocate ([\d.]+)\s*(bytes|[KMGT]i?B)?", re.I)


@dataclass(frozen=True)
class Outcome:
    status: str  # succeeded | failed | cancelled | requeue | retry | lost
    failure_reason: str | None = None
    error: str | None = None
    summary: dict[str, Any] | None = field(default=None)


def from_finished(
    finished: Finished,
    stop_reason: str | None,
    spec: JobSpec,
    storage_error: Exception | None = None,
) -> Outcome:
    """The outcome of a run that returned; `storage_error`: its final checkpoint failed."""
    summary = finite(finished.summary)
    if finished.status == "completed" and storage_error is not None:
        return Outcome(
            "retry",
            "infra",
            f"training finished (summary and metrics kept) but {storage_error}; "
            "retried from the last good checkpoint",
            summary,
        )
    if finished.status == "completed":
        return Outcome("succeeded", summary=summary)
    if finished.status == "diverged":
        lr = spec.optimizer.base.lr
        message = (
            f"{finished.message or f'diverged at step {finished.step}'}; the loss is no longer "
            f"finite. Try a smaller optimizer.base.lr (now {lr:g}) or set training.grad_clip"
        )
        return Outcome("failed", "diverged", message, summary)
    return _stopped(finished.step, stop_reason, spec, summary)


def _stopped(step: int, reason: str | None, spec: JobSpec, summary: dict[str, Any]) -> Outcome:
    if reason == "cancel":
        return Outcome("cancelled", "cancelled", f"cancelled by request at step {step}", summary)
    if reason == "timeout":
        limit = spec.limits.timeout_s
        which = (
            f"limits.timeout_s = {limit} s"
            if limit is not None
            else "the deployment's FLATLAB_JOB_TIMEOUT_SECONDS (the spec sets no limits.timeout_s)"
        )
        message = (
            f"stopped at step {step}: the run reached its wall-clock limit, {which}. "
            "Raise limits.timeout_s, or shorten training.epochs, or evaluate and measure less "
            "often (evaluate.every_epochs, measure.every_epochs)"
        )
        return Outcome("failed", "timeout", message, summary)
    if reason == "shutdown" and graceful():
        return Outcome("requeue")
    if reason == "shutdown":
        return Outcome(
            "retry",
            "infra",
            f"the worker stopped the run at step {step} without a hand-back (its broker "
            "connection was lost); retried from the last checkpoint",
        )
    return Outcome("lost")


def from_exception(exc: BaseException, step: int, spec: JobSpec | None) -> Outcome:
    """The failure an exception from building or training a job stands for."""
    first = _first_line(exc)
    batch = spec.data.batch_size if spec is not None else "?"
    if isinstance(exc, LeaseLost):
        return Outcome("lost")
    if isinstance(exc, StorageFailure):
        return Outcome(
            "retry", "infra", f"{exc} at step {step}; retried from the last good checkpoint"
        )
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return Outcome(
            "failed",
            "oom",
            f"out of GPU memory at step {step}{_asked(first)} ({first}). Lower data.batch_size "
            f"(now {batch}), use a smaller model, or set training.precision to bf16",
        )
    if isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and _HOST_OOM.search(str(exc))
    ):
        return Outcome(
            "failed",
            "oom",
            f"out of host memory at step {step}{_asked(str(exc))}. Lower data.batch_size "
            f"(now {batch}) or use a smaller model",
        )
    if isinstance(exc, ChildFailedError):
        ranks = ", ".join(
            f"rank {rank} (exit code {f.exitcode})" for rank, f in sorted(exc.failures.items())
        )
        return Outcome(
            "failed",
            "infra_lost",
            f"a rank of the data-parallel job was lost at or after step {step}: {ranks}; the "
            "other ranks were stopped. Its last checkpoint is kept (a retry resumes from it); "
            "the worker's log has each rank's error",
        )
    if isinstance(exc, pydantic.ValidationError):
        return Outcome("failed", "user_error", f"the job's spec is not valid: {exc}")
    if isinstance(exc, (ValueError, FileNotFoundError, KeyError, TypeError)):
        return Outcome("failed", "user_error", f"{first} (at step {step})")
    return Outcome(
        "failed",
        "user_error",
        f"training raised {type(exc).__name__} at step {step}: {first}. "
        "The worker's log has the traceback",
    )


def _asked(message: str) -> str:
    """`: it asked for 7.45 GiB` from an allocator's message, or '' when it names no size."""
    found = _ASKED.search(message)
    if found is None:
        return ""
    size, unit = float(found.group(1)), (found.group(2) or "bytes")
    if unit.lower() == "bytes":
        for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
            if size < 1024 or unit == "TiB":
                break
            size /= 1024
    return f": it asked for {size:.4g} {unit}"


def finite(summary: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN or infinity: a non-finite value becomes null."""
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in summary.items()
    }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
