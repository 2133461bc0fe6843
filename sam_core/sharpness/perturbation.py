"""Sharpness as the loss rise under a weight perturbation ε: worst case, one ascent step,
average, adaptive (scale-invariant) and m-sharpness.

The worst case max_{‖ε‖≤ρ} L(w+ε) − L(w) is estimated by projected
normalised-gradient ascent (Andriushchenko & Flammarion 2022) from several
starts — SAM's ρ g/‖g‖, ± the two top Hessian eigenvectors and three random
directions — keeping the best rise met (`sam_core.sharpness.ascent`). The
adaptive case (Kwon et al. 2021) runs the same search on u = ε/T,
T = |w| + η, where the constraint is a ball again; m-sharpness runs it on
each chunk.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from sam_core.sharpness.ascent import first_step, worst_case
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
    """max over ‖ε‖ ≤ ρ of L(w+ε) − L(w): the best rise found by projected ascent.

    Ascents start from g, ±v₁, ±v₂ (top Hessian eigenvectors, by Lanczos) and
    three random directions; each runs at most ``steps`` steps and stops early once
    a step moves ε by less than 1e-3 ρ. ``converged`` says whether the start that
    found the value converged; extras ``starts`` list each start's value, steps
    and convergence, ``best_start`` names the winner. For small ρ at a minimum
    the value is ≈ ρ² λ_max / 2; away from one the first-order term ρ‖g‖
    dominates (extras ``grad_norm``). Raises ValueError on bad parameters or
    empty batches.
    """
    p = validate_params("worst_case_sharpness", WorstCaseParams, rho=rho, steps=steps)
    with measuring(model):
        obj = Objective(model, loss_fn, batches)
        value, converged, extras = worst_case(obj, p.rho, p.steps, None, obj.generator(seed))
    return MeasureResult(value, obj.meter.freeze(), converged, extras)


def ascent_sharpness(
    model: nn.Module, loss_fn: LossFn, batches: Batches, *, seed: int = 0, rho: float = 0.05
) -> MeasureResult:
    """L(w + ρ g/‖g‖) − L(w): SAM's one ascent step (a random direction if g = 0)."""
    p = validate_params("ascent_sharpness", AscentParams, rho=rho)
    with measuring(model):
        obj = Objective(model, loss_fn, batches)
        value, extras = first_step(obj, p.rho, obj.generator(seed))
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
        value, converged, extras = worst_case(obj, p.rho, p.steps, scale, obj.generator(seed))
    return MeasureResult(value, obj.meter.freeze(), converged, extras)


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
    meter, values, all_converged = CostMeter(), [], True
    with measuring(model):
        for chunk in chunks:
            obj = Objective(model, loss_fn, [chunk])
            value, converged, _ = worst_case(obj, p.rho, p.steps, None, obj.generator(seed))
            values.append(value)
            all_converged = all_converged and converged
            meter.absorb(obj.meter.freeze(), chunk[0].shape[0] / total)
    tensor = torch.tensor(values, dtype=torch.float64)
    stderr = float(tensor.std() / math.sqrt(len(values))) if len(values) > 1 else None
    extras = {"chunks": len(values), "chunk_values": values, "stderr": stderr}
    return MeasureResult(float(tensor.mean()), meter.freeze(), all_converged, extras)


def _chunks(batches: Batches, m: int) -> list[tuple[Tensor, Tensor]]:
    pairs = list(as_batch_source(batches)())
    if not pairs:
        raise ValueError("batches is empty: there are no examples to measure on")
    x = torch.cat([x for x, _ in pairs])
    y = torch.cat([y for _, y in pairs])
    count = max(x.shape[0] // m, 1)
    size = m if x.shape[0] >= m else x.shape[0]
    return [(x[i * size : (i + 1) * size], y[i * size : (i + 1) * size]) for i in range(count)]
