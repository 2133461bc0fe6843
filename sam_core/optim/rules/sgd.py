"""SGD and GD: the base optimizer alone, ĝ = g, one pass."""

from __future__ import annotations

from typing import Any

from sam_core.optim.engine import Closure, SharpnessAware


class Sgd(SharpnessAware):
    """The baseline; ``step()`` without a closure steps on gradients already computed."""

    name = "sgd"

    def step(self, closure: Closure | None = None) -> Any:  # type: ignore[override]
        loss = None if closure is None else self.run_pass(closure)
        self.apply_base_step(grad_evals=1.0)
        return loss


class Gd(Sgd):
    """SGD whose batch is the whole training set (the trainer samples `full`)."""

    name = "gd"
