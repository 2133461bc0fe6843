"""Loss-landscape slices along filter-normalised random directions (Li et al. 2018).

A direction d has the weights' shapes, Gaussian entries, and each filter —
each slice along dim 0 of a weight of rank ≥ 2 (a conv output channel, a row
of a linear layer) — rescaled to the norm of the same filter of w:
d_i ← d_i ‖w_i‖ / (‖d_i‖ + 1e-10). Parameters of rank ≤ 1 (biases, BatchNorm
γ and β) get a zero direction, as ``--xignore biasbn`` does in
tomgoldstein/loss-landscape. BatchNorm running statistics stay fixed (eval mode).
The value is the largest loss rise on the grid, max L(w + α d) − L(w).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from sam_core.sharpness.objective import Batches, Objective, measuring
from sam_core.sharpness.params import validate_params
from sam_core.sharpness.result import MeasureResult
from sam_core.spec.catalog import Landscape1dParams, Landscape2dParams

LossFn = Callable[..., Tensor]


def filter_normalized_direction(obj: Objective, gen: torch.Generator) -> Tensor:
    """A random direction, filter-normalised to the weights at the objective's origin."""
    parts = []
    for weight in obj.unflat(obj.origin):
        if weight.dim() <= 1:
            parts.append(torch.zeros_like(weight))
            continue
        d = torch.randn(weight.shape, generator=gen, device=obj.device, dtype=obj.dtype)
        w_norms = weight.reshape(weight.shape[0], -1).norm(dim=1)
        d_norms = d.reshape(d.shape[0], -1).norm(dim=1)
        factor = (w_norms / (d_norms + 1e-10)).reshape(-1, *([1] * (weight.dim() - 1)))
        parts.append(d * factor)
    return obj.flat(parts)


def loss_landscape_1d(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    *,
    seed: int = 0,
    points: int = 21,
    span: float = 1.0,
) -> MeasureResult:
    """L(w + α d) for α on ``points`` values evenly spaced in [−span, span].

    extras: ``alphas``, ``losses``, ``loss`` (at w) and ``end_rise`` (the mean
    rise at ±span).
    """
    p = validate_params("loss_landscape_1d", Landscape1dParams, points=points, span=span)
    with measuring(model):
        obj = Objective(model, loss_fn, batches)
        direction = filter_normalized_direction(obj, obj.generator(seed))
        base = obj.loss()
        alphas = torch.linspace(-p.span, p.span, p.points, dtype=torch.float64).tolist()
        losses = [obj.loss_at(a * direction) for a in alphas]
        obj.set_offset(None)
    extras = {
        "alphas": alphas,
        "losses": losses,
        "loss": base,
        "end_rise": (losses[0] + losses[-1]) / 2 - base,
    }
    return MeasureResult(max(losses) - base, obj.meter.freeze(), None, extras)


def loss_landscape_2d(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    *,
    seed: int = 0,
    points: int = 11,
    span: float = 1.0,
) -> MeasureResult:
    """L(w + α d₁ + β d₂) on a ``points`` × ``points`` grid over [−span, span]².

    d₁ and d₂ are independent draws (nearly orthogonal in high dimension, as
    Li et al. note). extras ``losses[i][j]`` is at (alphas[i], alphas[j]).
    """
    p = validate_params("loss_landscape_2d", Landscape2dParams, points=points, span=span)
    with measuring(model):
        obj = Objective(model, loss_fn, batches)
        gen = obj.generator(seed)
        first = filter_normalized_direction(obj, gen)
        second = filter_normalized_direction(obj, gen)
        base = obj.loss()
        alphas = torch.linspace(-p.span, p.span, p.points, dtype=torch.float64).tolist()
        losses = [[obj.loss_at(a * first + b * second) for b in alphas] for a in alphas]
        obj.set_offset(None)
    peak = max(max(row) for row in losses)
    extras = {"alphas": alphas, "losses": losses, "loss": base}
    return MeasureResult(peak - base, obj.meter.freeze(), None, extras)
