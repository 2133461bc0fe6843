"""What the training loop reports, as plain data (no torch types but in `Checkpoint.state`).

`sam_core.training.train(spec, on_event, should_stop, resume=None)` calls
`on_event` with these, in order; the worker turns them into database rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Started:
    """The run is set up: where it runs and how long it will be."""

    device: str
    total_steps: int
    steps_per_epoch: int
    num_params: int
    start_step: int = 0  # > 0 when resumed from a checkpoint


@dataclass(frozen=True)
class Metrics:
    """Metric points taken at one step: training-step metrics, evaluations and measures.

    `values` maps a metric name (`train_loss`, `test_acc`, `hessian_trace`, …) to a float.
    `extras` holds non-scalar results (a landscape slice, a density) keyed by name.
    """

    step: int
    epoch: float
    values: dict[str, float]
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Progress:
    step: int
    epoch: float
    fraction: float
    grad_evals: int  # gradient evaluations so far (a SAM step counts two)
    train_seconds: float  # wall time spent training, measures excluded


@dataclass(frozen=True)
class Checkpoint:
    """Everything needed to continue bit-for-bit: model, optimizer, scheduler, RNG, counters.

    `state` is a dict of tensors and plain values for `torch.save`; it loads back with
    `torch.load(..., weights_only=True)` and is passed to `train(..., resume=state)`.
    """

    step: int
    epoch: float
    state: dict[str, Any]


@dataclass(frozen=True)
class Finished:
    """The end of a run: how it ended and its summary metrics."""

    status: Literal["completed", "diverged", "stopped"]
    step: int
    summary: dict[str, float]
    message: str = ""


Event = Started | Metrics | Progress | Checkpoint | Finished
