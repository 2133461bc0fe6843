"""Float tolerances derived from the dtype's precision and the size of the computation.

A result built from `ops` roundings in sequence (a sum or dot product of `ops`
terms, a chain of `ops` operations) has a relative forward error of at most
γ(ops) = ops·u / (1 − ops·u) ≈ ops·u, with u = eps/2 the unit roundoff
(Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1).
A result that subtracts nearly equal quantities, or solves a problem of
condition number κ, loses a further factor κ. `float_tolerance` returns
`SAFETY · ops · eps · condition`: the factor `SAFETY` covers the constants of
those bounds and the rounding of the test's own reference, so the bound holds
whatever order a machine's BLAS sums in. Tests compare in float64 where the
math allows it, and use this where a dtype is part of what they test.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SAFETY = 8.0


def eps(dtype: Any = "float64") -> float:
    """Machine epsilon of a numpy or torch dtype (or its name: "float32", …)."""
    if isinstance(dtype, str | type | np.dtype):
        return float(np.finfo(dtype).eps)
    import torch  # only the tests that pass a torch dtype need it

    return float(torch.finfo(dtype).eps)


def float_tolerance(dtype: Any = "float64", *, ops: int = 1, condition: float = 1.0) -> float:
    """Relative tolerance of a result of `ops` roundings in `dtype`, amplified by `condition`.

    `SAFETY · ops · eps(dtype) · condition`. Raises ValueError for `ops < 1` or
    `condition < 1` (a bound below one rounding would be a guess).
    """
    if ops < 1 or condition < 1.0:
        raise ValueError(f"ops must be ≥ 1 and condition ≥ 1, got {ops} and {condition}")
    return SAFETY * ops * eps(dtype) * condition


def ensemble_tolerance(*, steps: int, width: int) -> float:
    """Relative tolerance of a seed-ensemble member against its solo run.

    Both train in float32; the ensemble's batched matmuls sum in another order
    than the solo run's. Each step's sums run over at most `width` terms (the
    widest layer or the batch, whichever is larger), and on a stable trajectory
    the per-step differences add up over `steps` steps:
    `float_tolerance(float32, ops=steps · width)`.
    """
    return float_tolerance("float32", ops=steps * width)
