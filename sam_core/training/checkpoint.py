"""What a checkpoint holds, and how it is taken and checked on the way back in.

`Checkpoint.state` is a snapshot: tensors are copied to the CPU, so the worker may
save it later, on another thread, while training goes on. Everything in it is a
tensor, a number, a string, None, or a list / tuple / dict of those, which is what
`torch.load(..., weights_only=True)` accepts.
"""

from __future__ import annotations

from typing import Any

import torch

FORMAT_VERSION = 1

KEYS = (
    "format_version",
    "spec_hash",
    "model",
    "optimizer",
    "scheduler",
    "rng",
    "sampler",
    "counters",
    "trackers",
    "clock",
)


def snapshot(value: Any) -> Any:
    """A deep copy of `value` with every tensor detached and moved to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: snapshot(item) for key, item in value.items()}
    if isinstance(value, list):
        # Plain values are kept as they are, without a call each: a run's global RNG
        # state holds Python's 625-int generator state as a list.
        return [item if isinstance(item, _PLAIN) else snapshot(item) for item in value]
    if isinstance(value, tuple):
        return tuple(item if isinstance(item, _PLAIN) else snapshot(item) for item in value)
    return value


_PLAIN = (int, float, str, bool, type(None))


def check_resume_state(state: dict[str, Any], spec_hash: str) -> None:
    """Refuse a checkpoint that is not ours or was taken from a different spec."""
    missing = [key for key in KEYS if key not in state]
    if missing:
        raise ValueError(f"resume state lacks {', '.join(missing)}: not a flatlab checkpoint")
    if state["format_version"] != FORMAT_VERSION:
        raise ValueError(
            f"checkpoint format {state['format_version']} is not {FORMAT_VERSION}, the one "
            "this version of flatlab reads"
        )
    if state["spec_hash"] != spec_hash:
        raise ValueError(
            f"checkpoint was taken from spec {state['spec_hash'][:12]}…, "
            f"not from this one ({spec_hash[:12]}…)"
        )
