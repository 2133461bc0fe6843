"""Sharpness as the loss rise under a weight perturbation ε: worst case, one ascent step,
average, adaptive (scale-invariant) and m-sharpness.

The worst case max_{‖ε‖≤ρ} L(w+ε) − L(w) is estimated by projected
normalised-gradient ascent as Andriushchenko & Flammarion (2022) do: the first
step is SAM's ε = ρ g/‖g‖ (a random direction when g = 0, e.g. exactly at a
minimum), each next step adds ρ ∇/‖∇‖ and projects back onto the ρ-ball, and
the best rise met is the value. The adaptive case (Kwon et al. 2021) runs the
same ascent on u = ε/T, T = |w| + η, where the constraint is a ball again and
the gradient is T ⊙ ∇L(w + T ⊙ u).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from sam_core.sharpness.objective import Batches, Objective, as_batch_source, measuring
from sam_core.sharpness.params import validate_params
from sam_core.sharpness.result import CostMeter, MeasureResult
from sam_core.spec.catalog import (
    AdaptiveParams,
    AscentParams,
    AverageParams,
    MSharpnessParams,
    WorstCaseParams,
)

LossFn = Callable[..., Tensor]
_TINY = 1e-12


def worst_case_sharpness(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    *,
    seed: int = 0,
    rho: float = 0.05,
    steps: int = 10,
) -> MeasureResult:
    """max over ‖ε‖ ≤ ρ of L(w+ε) − L(w): the best rise found in ``steps`` ascent steps.

    For small ρ at a minimum it is ≈ ρ² λ_max / 2; away from one the first-order
    term ρ‖g‖ dominates (extras ``grad_norm``).
    """
    p = validate_params("worst_case_sharpness", WorstCaseParams, rho=rho, steps=steps)
    with measuring(model):
        obj = Objective(model, loss_fn, batches)
        value, extras = _ascend(obj, p.rho, p.steps, None, obj.generator(seed))
    return MeasureResult(value, obj.meter.freeze(), None, extras)


def ascent_sharpness(
    model: nn.Module, loss_fn: LossFn, batches: Batches, *, seed: int = 0, rho: float = 0.05
) -> MeasureResult:
    """L(w + ρ g/‖g‖) − L(w): SAM's one ascent step (a random direction if g = 0)."""
    p = validate_params("ascent_sharpness", AscentParams, rho=rho)
    with measuring(model):
        obj = Objective(model, loss_fn, batches)
        value, extras = _ascend(obj, p.rho, 1, None, obj.generator(seed))
    return MeasureResult(value, obj.meter.freeze(), None, extras)


def adaptive_sharpness(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    *,
    seed: int = 0,
    rho: float = 0.05,
    eta: float = 0.01,
    steps: int = 10,
) -> MeasureResult:
    """max over ‖ε / (|w| + η)‖ ≤ ρ of L(w+ε) − L(w), by ascent in u = ε/T.

    With η = 0 it is invariant to rescalings that leave the network's function
    unchanged (a ReLU layer times α, the next divided by α).
    """
    p = validate_params("adaptive_sharpness", AdaptiveParams, rho=rho, eta=eta, steps=steps)
    with measuring(model):
        obj = Objective(model, loss_fn, batches)
        scale = obj.origin.abs() + p.eta
        value, extras = _ascend(obj, p.rho, p.steps, scale, obj.generator(seed))
    return MeasureResult(value, obj.meter.freeze(), None, extras)


def average_sharpness(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    *,
    seed: int = 0,
    sigma: float = 0.01,
    samples: int = 32,
) -> MeasureResult:
    """E L(w+ε) − L(w), ε ~ N(0, σ² I) per coordinate (Andriushchenko et al. 2023).

    Monte-Carlo over ``samples`` draws; extras ``stderr`` is its standard error.
    For small σ at a minimum it is ≈ σ² tr(∇²L) / 2.
    """
    p = validate_params("average_sharpness", AverageParams, sigma=sigma, samples=samples)
    with measuring(model):
        obj = Objective(model, loss_fn, batches)
        gen = obj.generator(seed)
        base = obj.loss()
        rises = [obj.loss_at(p.sigma * obj.randn(gen)) - base for _ in range(p.samples)]
        obj.set_offset(None)
    values = torch.tensor(rises, dtype=torch.float64)
    stderr = float(values.std() / math.sqrt(p.samples)) if p.samples > 1 else None
    extras = {"stderr": stderr, "samples": p.samples, "loss": base}
    return MeasureResult(float(values.mean()), obj.meter.freeze(), None, extras)


def m_sharpness(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    *,
    seed: int = 0,
    rho: float = 0.05,
    m: int = 32,
    steps: int = 5,
) -> MeasureResult:
    """Mean over disjoint chunks of m examples of each chunk's worst-case sharpness (Foret et al.).

    The examples of all batches are taken in order and cut into chunks of m;
    a last, shorter chunk is dropped unless it is the only one. Every chunk
    runs `worst_case_sharpness` with the same ``seed``.
    """
    p = validate_params("m_sharpness", MSharpnessParams, rho=rho, m=m, steps=steps)
    chunks = _chunks(batches, p.m)
    total = sum(x.shape[0] for x, _ in chunks)
    meter, values = CostMeter(), []
    with measuring(model):
        for chunk in chunks:
            obj = Objective(model, loss_fn, [chunk])
            value, _ = _ascend(obj, p.rho, p.steps, None, obj.generator(seed))
            values.append(value)
            meter.absorb(obj.meter.freeze(), chunk[0].shape[0] / total)
    tensor = torch.tensor(values, dtype=torch.float64)
    stderr = float(tensor.std() / math.sqrt(len(values))) if len(values) > 1 else None
    extras = {"chunks": len(values), "chunk_values": values, "stderr": stderr}
    return MeasureResult(float(tensor.mean()), meter.freeze(), None, extras)


def _ascend(
    obj: Objective, rho: float, steps: int, scale: Tensor | None, gen: torch.Generator
) -> tuple[float, dict[str, Any]]:
    """Projected normalised-gradient ascent on u, ε = scale ⊙ u, ‖u‖ ≤ ρ; the best rise."""

    def to_u(grad: Tensor) -> Tensor:  # ∂L(w + scale⊙u)/∂u
        return grad if scale is None else grad * scale

    base, grad = obj.loss_and_grad()
    grad_norm = float(grad.norm())
    direction = to_u(grad)
    random_start = float(direction.norm()) <= _TINY
    if random_start:
        direction = obj.randn(gen)
    u = rho * direction / direction.norm()
    best, best_step = -math.inf, 0
    for step in range(1, steps + 1):
        offset = u if scale is None else scale * u
        if step == steps:
            loss = obj.loss_at(offset)
        else:
            loss, grad = obj.loss_and_grad_at(offset)
        if loss - base > best:
            best, best_step = loss - base, step
        if step == steps:
            break
        ascent = to_u(grad)
        if float(ascent.norm()) <= _TINY:
            break
        u = u + rho * ascent / ascent.norm()
        u = u * min(1.0, rho / float(u.norm()))
    obj.set_offset(None)
    extras = {
        "loss": base,
        "grad_norm": grad_norm,
        "best_step": best_step,
        "random_start": random_start,
    }
    return best, extras


def _chunks(batches: Batches, m: int) -> list[tuple[Tensor, Tensor]]:
    pairs = list(as_batch_source(batches)())
    if not pairs:
        raise ValueError("batches is empty: there are no examples to measure on")
    x = torch.cat([x for x, _ in pairs])
    y = torch.cat([y for _, y in pairs])
    count = max(x.shape[0] // m, 1)
    size = m if x.shape[0] >= m else x.shape[0]
    return [(x[i * size : (i + 1) * size], y[i * size : (i + 1) * size]) for i in range(count)]
