"""The seed papers' closed forms, run through sam_core and checked against the formulas.

- Wen, Ma & Li 2023, Thm 4.8: full-batch SAM on L = ½wᵀHw with ηλ₁ < 1 ends in a
  period-2 oscillation along ±v₁ of amplitude ‖w‖ = ηρλ₁/(2 − ηλ₁), the gradient
  aligned with v₁. Checked in float64 on the `quadratic` data set's own design.
- Wen, Li & Ma 2023, Lemma 4.1: at an interpolating minimum of L = (1/n)Σ(f(xᵢ) − yᵢ)²,
  tr∇²L = (2/n)Σ‖∇_θ f(xᵢ)‖² (`sharpness.interpolation_trace`), against the trace of
  the exact Hessian (torch.func.hessian) of a two-layer ReLU net on XOR inputs.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call

from sam_core.data.papers import quadratic_design
from sam_core.data.synthetic import sign_inputs
from sam_core.models.two_layer import TwoLayerNet
from sam_core.optim import create_optimizer
from sam_core.sharpness import hessian_trace, interpolation_trace
from sam_core.spec import DATASETS
from tests.tolerance import float_tolerance

EIGENVALUES = [10.0, 6.0, 4.0, 3.0, 2.0, 1.5, 1.0, 0.8, 0.6, 0.5]


def _design() -> tuple[torch.Tensor, torch.Tensor]:
    """A with (2/n)AᵀA = H (rotated at random), and H itself, in float64."""
    params = DATASETS["quadratic"].params.model_validate(
        {"eigenvalues": EIGENVALUES, "targets": "zero"}
    )
    a, _, _ = quadratic_design(params)
    return a, 2.0 / len(a) * a.T @ a


@pytest.mark.parametrize(("lr", "rho", "seed"), [(0.05, 0.1, 0), (0.05, 0.1, 1), (0.08, 0.02, 2)])
def test_full_batch_sam_on_a_quadratic_ends_in_the_two_cycle(lr, rho, seed) -> None:
    a, hessian = _design()
    values, vectors = torch.linalg.eigh(hessian)
    lam1, v1 = float(values[-1]), vectors[:, -1]
    assert lr * lam1 < 1
    torch.manual_seed(seed)
    model = nn.Linear(len(a), 1, bias=False).double()
    base = {"name": "sgd", "lr": lr, "momentum": 0.0, "weight_decay": 0.0}
    optimizer = create_optimizer("sam", model, base=base, rho=rho)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = model(a).pow(2).mean()  # = ½wᵀHw: the data set's loss with zero targets
        loss.backward()
        return loss

    norms = []
    for _ in range(2000):
        optimizer.step(closure)
        norms.append(float(model.weight.detach().norm()))
    w = model.weight.detach().flatten()
    predicted = lr * rho * lam1 / (2 - lr * lam1)
    # Off v₁ every component contracts by at least 1 − ηλ_min per step (0.97^2000 ≈ 1e-27):
    # what is left is rounding, a few float64 operations per step on a contracting map.
    tol = float_tolerance(ops=100)
    assert norms[-1] == pytest.approx(predicted, rel=tol)
    assert norms[-2] == pytest.approx(predicted, rel=tol)
    gradient = hessian @ w
    assert abs(float(gradient @ v1)) / float(gradient.norm()) == pytest.approx(1.0, abs=tol)
    # Period 2: w flips to −w each step.
    before = w.clone()
    optimizer.step(closure)
    torch.testing.assert_close(model.weight.detach().flatten(), -before, rtol=0, atol=tol)


def _flat_hessian_trace(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    named = [(n, p.detach()) for n, p in model.named_parameters() if p.requires_grad]
    sizes = [p.numel() for _, p in named]
    flat = torch.cat([p.reshape(-1) for _, p in named])

    def loss(vector: torch.Tensor) -> torch.Tensor:
        params = {n: v.view_as(p) for (n, p), v in zip(named, vector.split(sizes), strict=True)}
        return (functional_call(model, params, (x,)) - y).pow(2).mean()

    return float(torch.func.hessian(loss)(flat).diagonal().sum())


@pytest.mark.parametrize(
    ("first_bias", "norm"), [(False, "none"), (True, "none"), (True, "sim_ln")]
)
def test_lemma_4_1_trace_equals_the_exact_hessian_trace_at_interpolation(first_bias, norm) -> None:
    torch.manual_seed(0)
    x = sign_inputs(6)(12, torch.Generator().manual_seed(1)).double()
    model = TwoLayerNet(6, 16, 1, first_bias=first_bias, norm=norm, init="pytorch").double()
    with torch.no_grad():
        y = model(x)  # targets the model fits exactly: an interpolating minimum
    exact = _flat_hessian_trace(model, x, y)
    lemma = interpolation_trace(model, x)
    assert exact > 0
    # sums of ~10² float64 products of ~10² terms each
    assert lemma == pytest.approx(exact, rel=float_tolerance(ops=10_000))
    # Hutch++ with a sketch spanning the space (3·dim probes) is exact too: the measure
    # the XOR presets log agrees with both.
    dim = sum(p.numel() for p in model.parameters())
    measured = hessian_trace(model, nn.MSELoss(), [(x, y)], probes=3 * dim + 3).value
    assert measured == pytest.approx(exact, rel=float_tolerance(ops=10_000))


def test_away_from_interpolation_only_the_residual_term_separates_them() -> None:
    """tr∇²L = (2/n)Σ‖∇f‖² + (2/n)Σ rᵢ tr∇²f(xᵢ). For W₂·relu(W₁x + b₁) every diagonal
    entry of ∇²f is 0 (f is linear in each weight alone), so the lemma's trace is exact
    even off interpolation; Sim-LN's normalisation makes ∇²f's diagonal non-zero."""
    torch.manual_seed(0)
    x = sign_inputs(6)(12, torch.Generator().manual_seed(1)).double()
    y = x[:, :1] * x[:, 1:2]  # XOR labels, not fitted by a fresh net
    plain = TwoLayerNet(6, 16, 1, first_bias=True, init="pytorch").double()
    exact = _flat_hessian_trace(plain, x, y)
    assert interpolation_trace(plain, x) == pytest.approx(exact, rel=float_tolerance(ops=10_000))
    simln = TwoLayerNet(6, 16, 1, first_bias=True, norm="sim_ln", init="pytorch").double()
    gap = interpolation_trace(simln, x) - _flat_hessian_trace(simln, x, y)
    assert abs(gap) > 1e-3 * interpolation_trace(simln, x)
