"""What every measure returns: its value, what it cost, whether it converged."""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Cost:
    """Work done, in passes over the whole measured set (all batches).

    ``hvps`` counts Hessian-vector products, ``grads`` gradient evaluations and
    ``forwards`` loss evaluations without gradient. A measure on m-example
    chunks counts each chunk pass as its share of the set, so the numbers stay
    comparable across measures.
    """

    hvps: float = 0.0
    grads: float = 0.0
    forwards: float = 0.0
    seconds: float = 0.0


@dataclass(frozen=True)
class MeasureResult:
    """A measure's value, its `Cost`, convergence (None when it has no stop rule) and extras.

    ``warm_start`` holds what a later call of the same measure may start from
    (the top Ritz vectors of a λ_max measure, flat, in the weights' dtype); it
    is not part of `to_dict`.
    """

    value: float
    cost: Cost
    converged: bool | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    warm_start: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "cost": asdict(self.cost),
            "converged": self.converged,
            "extras": copy.deepcopy(self.extras),
        }


class CostMeter:
    """Counts passes while a measure runs; ``freeze()`` gives the final `Cost`."""

    def __init__(self) -> None:
        self.hvps = 0.0
        self.grads = 0.0
        self.forwards = 0.0
        self._start = time.perf_counter()

    def absorb(self, cost: Cost, share: float = 1.0) -> None:
        """Adds the cost of a sub-measure that covered ``share`` of the set."""
        self.hvps += cost.hvps * share
        self.grads += cost.grads * share
        self.forwards += cost.forwards * share

    def freeze(self) -> Cost:
        return Cost(self.hvps, self.grads, self.forwards, time.perf_counter() - self._start)
