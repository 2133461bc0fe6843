"""Sharpness measures: one function per entry of `sam_core.spec.catalog.MEASURES`.

Each is ``name(model, loss_fn, batches, *, seed=0, **params)`` and returns a
`MeasureResult`; `compute` dispatches by name. ``docs/measures.md`` defines
every measure, its estimator, cost and caveats.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from sam_core.sharpness.generalization import evaluate, interpolation_trace, prediction_error
from sam_core.sharpness.hvp import HessianOperator, hessian_vector_product
from sam_core.sharpness.landscape import loss_landscape_1d, loss_landscape_2d
from sam_core.sharpness.objective import Batches
from sam_core.sharpness.perturbation import (
    adaptive_sharpness,
    ascent_sharpness,
    average_sharpness,
    m_sharpness,
    worst_case_sharpness,
)
from sam_core.sharpness.result import Cost, MeasureResult
from sam_core.sharpness.spectrum import (
    grad_eigvec_alignment,
    hessian_density,
    hessian_top_eigenvalue,
    hessian_trace,
)

MEASURE_FUNCTIONS: dict[str, Callable[..., MeasureResult]] = {
    "hessian_top_eigenvalue": hessian_top_eigenvalue,
    "hessian_trace": hessian_trace,
    "hessian_density": hessian_density,
    "worst_case_sharpness": worst_case_sharpness,
    "ascent_sharpness": ascent_sharpness,
    "average_sharpness": average_sharpness,
    "adaptive_sharpness": adaptive_sharpness,
    "m_sharpness": m_sharpness,
    "grad_eigvec_alignment": grad_eigvec_alignment,
    "loss_landscape_1d": loss_landscape_1d,
    "loss_landscape_2d": loss_landscape_2d,
    "prediction_error": prediction_error,
}

# Measures that take ``start_vectors=`` (the previous result's ``warm_start``).
WARM_STARTED = frozenset({"hessian_top_eigenvalue"})


def compute(
    name: str,
    model: nn.Module,
    loss_fn: Callable[..., Tensor],
    batches: Batches,
    *,
    seed: int = 0,
    **params: Any,
) -> MeasureResult:
    """Runs the measure called ``name`` (a key of `MEASURE_FUNCTIONS`)."""
    try:
        measure = MEASURE_FUNCTIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown measure {name!r}; known: {', '.join(sorted(MEASURE_FUNCTIONS))}"
        ) from None
    return measure(model, loss_fn, batches, seed=seed, **params)


__all__ = [
    "MEASURE_FUNCTIONS",
    "WARM_STARTED",
    "Cost",
    "HessianOperator",
    "MeasureResult",
    "adaptive_sharpness",
    "ascent_sharpness",
    "average_sharpness",
    "compute",
    "evaluate",
    "grad_eigvec_alignment",
    "hessian_density",
    "hessian_top_eigenvalue",
    "hessian_trace",
    "hessian_vector_product",
    "interpolation_trace",
    "loss_landscape_1d",
    "loss_landscape_2d",
    "m_sharpness",
    "prediction_error",
    "worst_case_sharpness",
]
