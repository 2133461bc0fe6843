"""How a run ended, in the job's terms: a status, a reason, and a message a person can act on.

One table for the whole worker: the trainer's `Finished` and the stop signal's
reason on one side, any exception training raised on the other, and on the
far side `succeeded`, `failed` (with a `failure_reason`), `cancelled`, or
`requeue` (graceful shutdown: the job goes back to the queue) or `lost`
(another worker holds the job; write nothing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pydantic
import torch
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

from sam_core.spec import JobSpec
from sam_core.training.events import Finished


@dataclass(frozen=True)
class Outcome:
    status: str  # succeeded | failed | cancelled | requeue | lost
    failure_reason: str | None = None
    error: str | None = None
    summary: dict[str, Any] | None = field(default=None)


def from_finished(finished: Finished, stop_reason: str | None, spec: JobSpec) -> Outcome:
    summary = finite(finished.summary)
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
    if reason == "shutdown":
        return Outcome("requeue")
    return Outcome("lost")


def from_exception(exc: BaseException, step: int, spec: JobSpec | None) -> Outcome:
    """The failure an exception from building or training a job stands for."""
    first = _first_line(exc)
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        batch = spec.data.batch_size if spec is not None else "?"
        return Outcome(
            "failed",
            "oom",
            f"out of GPU memory at step {step} ({first}). Lower data.batch_size (now {batch}), "
            "use a smaller model, or set training.precision to bf16",
        )
    if isinstance(exc, MemoryError):
        return Outcome("failed", "oom", f"out of host memory at step {step}; lower data.batch_size")
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


def finite(summary: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN or infinity: a non-finite value becomes null."""
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in summary.items()
    }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
