"""Measures of the Hessian spectrum: λ_max, trace, eigenvalue density, gradient alignment.

All run on Hessian-vector products (`hvp.HessianOperator`) at the current
weights, with the model in eval mode, and leave the model as they found it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import torch
from torch import Tensor, nn

from sam_core.sharpness.hvp import HessianOperator
from sam_core.sharpness.lanczos import lanczos, power_iteration
from sam_core.sharpness.objective import Batches, Objective, measuring
from sam_core.sharpness.params import validate_params
from sam_core.sharpness.result import MeasureResult
from sam_core.spec.catalog import AlignmentParams, DensityParams, EigenParams, TraceParams

LossFn = Callable[..., Tensor]
_DENSITY_GRID = 401
TRACE_METHODS = ("hutchpp", "hutchinson")


def hessian_top_eigenvalue(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    *,
    seed: int = 0,
    method: str = "lanczos",
    max_iter: int = 50,
    tol: float = 1e-3,
    top_k: int = 1,
    warm_start: bool = True,
    start_vectors: Tensor | None = None,
) -> MeasureResult:
    """λ_max(∇²L) and, with ``top_k`` > 1, the next eigenvalues (extras ``eigenvalues``).

    Lanczos returns the algebraically largest eigenvalues and stops once each
    one's error bound min(r, r²/gap) ≤ tol·|θ| (r the Ritz residual, gap the
    distance to the next Ritz value: Parlett 1998, §11.7; the eigenvalue error,
    not the eigenvector's). Power iteration (PyHessian) returns those of
    largest magnitude and stops on a relative change < tol; extras
    ``dominant_is_negative`` says when the one found is negative, i.e. not λ_max.

    ``start_vectors``: the result's ``warm_start`` of an earlier call (top Ritz
    vectors, shape [dim, k]); with ``warm_start`` true (the default) Lanczos then
    starts from their sum plus a 1 % random part, which on a slowly changing model
    needs fewer products than a cold start; ``warm_start=False`` ignores them (the
    job spec's switch). A mismatched shape is ignored (a cold start). The result's
    ``warm_start`` holds this call's top vectors; ``cost.hvps`` the products used.
    """
    p = validate_params(
        "hessian_top_eigenvalue",
        EigenParams,
        method=method,
        max_iter=max_iter,
        tol=tol,
        top_k=top_k,
        warm_start=warm_start,
    )
    with measuring(model):
        obj = Objective(model, loss_fn, batches)
        operator, gen = HessianOperator(obj), obj.generator(seed)
        vectors = None
        if p.method == "lanczos":
            start, warmed = _start(obj, gen, start_vectors if p.warm_start else None)
            ritz = lanczos(operator, start, p.max_iter, top_k=p.top_k, tol=p.tol, keep_vectors=True)
            values = ritz.values[: p.top_k].tolist()
            converged = ritz.converged
            vectors = cast(Tensor, ritz.vectors)[:, : p.top_k].detach().clone()
            extras: dict[str, Any] = {
                "iterations": ritz.iterations,
                "relative_change": _finite(ritz.relative_change),
                "residuals": ritz.residuals[: p.top_k].tolist(),
                "warm_started": warmed,
            }
        else:
            power = power_iteration(
                operator, lambda: obj.randn(gen), p.max_iter, top_k=p.top_k, tol=p.tol
            )
            values, converged = power.values, power.converged
            extras = {
                "iterations": sum(power.iterations),
                "relative_change": _finite(max(power.relative_changes)),
                "dominant_is_negative": values[0] < 0,
            }
        cost = obj.meter.freeze()
    extras.update(method=p.method, eigenvalues=values)
    return MeasureResult(float(values[0]), cost, converged, extras, warm_start=vectors)


def _start(obj: Objective, gen: torch.Generator, warm: Tensor | None) -> tuple[Tensor, bool]:
    """A Lanczos start and whether it is warm: earlier top vectors' sum plus 1 % noise."""
    noise = obj.randn(gen)
    if warm is None or warm.dim() != 2 or warm.shape[0] != obj.dim:
        return noise, False
    previous = warm.to(device=obj.device, dtype=obj.dtype).sum(dim=1)
    if float(previous.norm()) == 0.0:
        return noise, False
    return previous / previous.norm() + 0.01 * noise / noise.norm(), True


def hessian_trace(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    *,
    seed: int = 0,
    probes: int = 100,
    method: str = "hutchpp",
) -> MeasureResult:
    """tr(∇²L) from ``probes`` Hessian-vector products, by Hutch++ (default) or Hutchinson.

    Hutchinson: the mean of vᵀHv over Rademacher v; extras ``stderr`` is the
    sample standard deviation over √probes. Hutch++ (Meyer, Musco, Musco &
    Woodruff 2021, Algorithm 1): k = ⌊probes/3⌋ products sketch the top of the
    spectrum, Q = orth(H S); tr(QᵀHQ) (k products) is exact, and Hutchinson
    with the remaining probes − 2k products estimates the trace of the rest,
    (I − QQᵀ) H (I − QQᵀ). Its ``stderr`` is that residual estimate's standard
    error (the sketch part carries none). Hutch++ wins when the spectrum
    decays (trained nets: 0.05–0.11× Hutchinson's error at equal products);
    on a flat spectrum it has about √3× Hutchinson's error. With fewer than
    3 probes, Hutch++ falls back to Hutchinson. Raises ValueError on a bad
    ``method`` or parameters.
    """
    if method not in TRACE_METHODS:
        raise ValueError(f"hessian_trace: method={method!r} is not one of {TRACE_METHODS}")
    p = validate_params("hessian_trace", TraceParams, probes=probes, method=method)
    sketch = p.probes // 3 if p.method == "hutchpp" else 0
    with measuring(model):
        obj = Objective(model, loss_fn, batches)
        operator, gen = HessianOperator(obj), obj.generator(seed)
        exact_part, basis = 0.0, None
        if sketch:
            images = torch.stack([operator(obj.rademacher(gen)) for _ in range(sketch)], dim=1)
            basis = torch.linalg.qr(images).Q
            exact_part = sum(float(q @ operator(q)) for q in basis.T)
        samples = []
        for _ in range(p.probes - 2 * sketch):
            v = obj.rademacher(gen)
            if basis is not None:
                v = v - basis @ (basis.T @ v)
            samples.append(float(v @ operator(v)))
        cost = obj.meter.freeze()
    mean, stderr = _mean_and_stderr(samples)
    extras = {
        "stderr": stderr,
        "probes": p.probes,
        "method": method if sketch else "hutchinson",
        "sketch_rank": sketch,
        "sketch_trace": exact_part,
    }
    return MeasureResult(exact_part + mean, cost, None, extras)


def hessian_density(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    *,
    seed: int = 0,
    iters: int = 50,
    runs: int = 1,
) -> MeasureResult:
    """Eigenvalue density by stochastic Lanczos quadrature (Ghorbani et al. 2019; PyHessian).

    Each run starts Lanczos from a Rademacher vector; the Ritz values are the
    quadrature nodes and the squared first components of the eigenvectors of
    T their weights (summing to 1 per run, averaged over runs). extras hold
    ``nodes``/``weights``, and a Gaussian-smoothed density on ``grid``
    (σ = 1 % of the node range) normalised to integrate to 1. The value is the
    negative mass: the weight on nodes below −1e-6·max|θ|.
    """
    p = validate_params("hessian_density", DensityParams, iters=iters, runs=runs)
    with measuring(model):
        obj = Objective(model, loss_fn, batches)
        operator, gen = HessianOperator(obj), obj.generator(seed)
        nodes, weights = [], []
        for _ in range(p.runs):
            ritz = lanczos(operator, obj.rademacher(gen), p.iters)
            nodes.append(ritz.values)
            weights.append(ritz.weights / p.runs)
        cost = obj.meter.freeze()
        dim = obj.dim
    theta, tau = torch.cat(nodes), torch.cat(weights)
    grid, density = _smoothed_density(theta, tau)
    scale = float(theta.abs().max())
    negative_mass = float(tau[theta < -1e-6 * scale].sum())
    extras = {
        "nodes": theta.tolist(),
        "weights": tau.tolist(),
        "grid": grid.tolist(),
        "density": density.tolist(),
        "lambda_max": float(theta.max()),
        "lambda_min": float(theta.min()),
        "trace_estimate": dim * float((tau * theta).sum()),
    }
    return MeasureResult(negative_mass, cost, None, extras)


def grad_eigvec_alignment(
    model: nn.Module, loss_fn: LossFn, batches: Batches, *, seed: int = 0, max_iter: int = 50
) -> MeasureResult:
    """|cos(∇L, v₁)|, v₁ the top Hessian eigenvector found by Lanczos (tol 1e-3).

    Wen, Ma & Li (2023): under full-batch SAM near the minimiser manifold the
    gradient aligns with v₁. A zero gradient gives 0.
    """
    p = validate_params("grad_eigvec_alignment", AlignmentParams, max_iter=max_iter)
    with measuring(model):
        obj = Objective(model, loss_fn, batches)
        _, grad = obj.loss_and_grad()
        operator, gen = HessianOperator(obj), obj.generator(seed)
        ritz = lanczos(
            operator, obj.randn(gen), p.max_iter, tol=1e-3, keep_vectors=True, vectors_matter=True
        )
        top = cast(Tensor, ritz.vectors)[:, 0]  # kept: keep_vectors=True
        cosine = float((grad @ top).abs() / (grad.norm() * top.norm()).clamp_min(1e-30))
        cost = obj.meter.freeze()
    extras = {
        "lambda_max": float(ritz.values[0]),
        "grad_norm": float(grad.norm()),
        "iterations": ritz.iterations,
    }
    return MeasureResult(cosine, cost, ritz.converged, extras)


def _smoothed_density(nodes: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    low, high = float(nodes.min()), float(nodes.max())
    width = max(high - low, 1e-3 * max(abs(low), abs(high)), 1e-12)
    sigma = 0.01 * width
    grid = torch.linspace(low - 5 * sigma, high + 5 * sigma, _DENSITY_GRID, dtype=torch.float64)
    kernel = torch.exp(-((grid[:, None] - nodes[None, :]) ** 2) / (2 * sigma**2))
    density = kernel @ weights / (sigma * math.sqrt(2 * math.pi))
    return grid, density / torch.trapezoid(density, grid)


def _mean_and_stderr(samples: list[float]) -> tuple[float, float | None]:
    values = torch.tensor(samples, dtype=torch.float64)
    stderr = float(values.std() / math.sqrt(len(samples))) if len(samples) > 1 else float("nan")
    return float(values.mean()), _finite(stderr)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None
