"""λ_max, top-k, trace, density and alignment against the exact Hessian of small models."""

from __future__ import annotations

import pytest
import torch

from sam_core.sharpness import (
    grad_eigvec_alignment,
    hessian_density,
    hessian_top_eigenvalue,
    hessian_trace,
)

from .conftest import Quadratic, exact_hessian, mean_output, spd_matrix

ONE_BATCH = [(torch.zeros(3, 1), torch.zeros(3))]


@pytest.mark.parametrize("fixture", ["classification", "bn_regression"])
def test_lanczos_top_eigenvalue_within_one_percent(fixture, request):
    model, loss_fn, x, y = request.getfixturevalue(fixture)
    exact = torch.linalg.eigvalsh(exact_hessian(model, loss_fn, x, y))[-1].item()
    result = hessian_top_eigenvalue(model, loss_fn, [(x[:50], y[:50]), (x[50:], y[50:])])
    assert result.value == pytest.approx(exact, rel=0.01)
    assert result.converged is True
    assert result.extras["iterations"] == result.cost.hvps
    # the stop rule bounds the eigenvalue error by tol·|θ| (default tol 1e-3)
    assert abs(result.value - exact) <= 1e-3 * abs(result.value)


def test_lanczos_top_k_eigenvalues(classification):
    model, loss_fn, x, y = classification
    exact = torch.linalg.eigvalsh(exact_hessian(model, loss_fn, x, y)).flip(0)[:3]
    result = hessian_top_eigenvalue(model, loss_fn, [(x, y)], top_k=3)
    torch.testing.assert_close(
        torch.tensor(result.extras["eigenvalues"], dtype=torch.float64), exact, rtol=0.01, atol=0
    )


def test_power_iteration_agrees_with_lanczos_when_lambda_max_dominates(classification):
    model, loss_fn, x, y = classification
    exact = torch.linalg.eigvalsh(exact_hessian(model, loss_fn, x, y))
    assert exact[-1] > 2 * abs(exact[0])  # λ_max dominates the spectrum
    power = hessian_top_eigenvalue(model, loss_fn, [(x, y)], method="power", max_iter=500, tol=1e-6)
    assert power.value == pytest.approx(exact[-1].item(), rel=0.01)
    assert power.extras["dominant_is_negative"] is False
    assert power.converged is True


def test_power_iteration_reports_a_negative_dominant_eigenvalue():
    model = Quadratic(spd_matrix([-5.0, 2.0, 1.0, 0.5]))
    power = hessian_top_eigenvalue(model, mean_output, ONE_BATCH, method="power", tol=1e-8)
    lanczos = hessian_top_eigenvalue(model, mean_output, ONE_BATCH)
    assert power.value == pytest.approx(-5.0, rel=1e-4)
    assert power.extras["dominant_is_negative"] is True
    assert lanczos.value == pytest.approx(2.0, rel=1e-6)


def test_hutchinson_trace_within_five_percent(classification):
    model, loss_fn, x, y = classification
    exact = torch.trace(exact_hessian(model, loss_fn, x, y)).item()
    result = hessian_trace(model, loss_fn, [(x, y)], probes=2000, method="hutchinson")
    print(
        f"trace {result.value:.4f} ± {result.extras['stderr']:.4f} (exact {exact:.4f}), "
        f"probes used: {result.extras['probes']}"
    )
    assert result.extras["probes"] == result.cost.hvps == 2000
    assert result.value == pytest.approx(exact, rel=0.05)
    assert abs(result.value - exact) < 4 * result.extras["stderr"]


def test_hutchinson_is_exact_for_every_probe_on_a_diagonal_hessian():
    model = Quadratic(torch.diag(torch.tensor([3.0, -1.0, 0.5, 2.0], dtype=torch.float64)))
    result = hessian_trace(model, mean_output, ONE_BATCH, probes=5, method="hutchinson")
    assert result.value == pytest.approx(4.5, abs=1e-12)
    assert result.extras["stderr"] == pytest.approx(0.0, abs=1e-12)


def test_density_nodes_are_eigenvalues_and_it_integrates_to_one(classification):
    model, loss_fn, x, y = classification
    eigenvalues = torch.linalg.eigvalsh(exact_hessian(model, loss_fn, x, y))
    result = hessian_density(model, loss_fn, [(x, y)], iters=200, runs=8)
    nodes = torch.tensor(result.extras["nodes"], dtype=torch.float64)
    distance = (nodes[:, None] - eigenvalues[None, :]).abs().min(dim=1).values
    assert distance.max() < 1e-6
    assert result.extras["lambda_max"] == pytest.approx(eigenvalues[-1].item(), rel=1e-6)
    assert result.extras["lambda_min"] == pytest.approx(eigenvalues[0].item(), rel=1e-6)
    assert sum(result.extras["weights"]) == pytest.approx(1.0, abs=1e-9)
    grid = torch.tensor(result.extras["grid"])
    density = torch.tensor(result.extras["density"])
    assert torch.trapezoid(density, grid).item() == pytest.approx(1.0, abs=1e-9)
    assert (density >= 0).all()
    negative = (eigenvalues < -1e-6 * eigenvalues.abs().max()).double().mean().item()
    # the negative mass: each run weighs eigenvalue k by (u_k·v)²/n, sd ≈ 0.03 over 8 runs
    assert result.value == pytest.approx(negative, abs=0.1)


def test_density_recovers_a_small_spectrum_with_its_weights():
    eigenvalues = [4.0, 2.0, 1.0, -0.5]
    model = Quadratic(spd_matrix(eigenvalues, seed=3))
    result = hessian_density(model, mean_output, ONE_BATCH, iters=10, runs=3)
    assert sorted(round(v, 9) for v in result.extras["nodes"]) == sorted(eigenvalues * 3)
    assert result.value == pytest.approx(
        sum(
            w
            for v, w in zip(result.extras["nodes"], result.extras["weights"], strict=True)
            if v < 0
        )
    )


def test_alignment_is_one_when_the_gradient_lies_along_the_top_eigenvector():
    matrix = spd_matrix([5.0, 2.0, 1.0, 0.5], seed=4)
    _, vectors = torch.linalg.eigh(matrix)
    along_top = grad_eigvec_alignment(
        Quadratic(matrix, start=0.3 * vectors[:, -1]), mean_output, ONE_BATCH
    )
    along_second = grad_eigvec_alignment(
        Quadratic(matrix, start=vectors[:, -2]), mean_output, ONE_BATCH
    )
    assert along_top.value == pytest.approx(1.0, abs=1e-6)
    assert along_top.extras["lambda_max"] == pytest.approx(5.0, rel=1e-6)
    assert along_second.value == pytest.approx(0.0, abs=1e-6)


def test_alignment_matches_the_exact_top_eigenvector(classification):
    model, loss_fn, x, y = classification
    _, vectors = torch.linalg.eigh(exact_hessian(model, loss_fn, x, y))
    loss = loss_fn(model(x), y)
    grad = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(model.parameters()))])
    exact = (grad @ vectors[:, -1]).abs() / grad.norm()
    result = grad_eigvec_alignment(model, loss_fn, [(x, y)], max_iter=100)
    assert result.value == pytest.approx(exact.item(), abs=1e-3)


def test_hutchpp_is_exact_once_its_sketch_spans_the_space(classification):
    model, loss_fn, x, y = classification  # 103 parameters: a 103-column sketch spans them all
    exact = torch.trace(exact_hessian(model, loss_fn, x, y)).item()
    result = hessian_trace(model, loss_fn, [(x, y)], probes=309)
    assert result.extras["method"] == "hutchpp"
    assert result.extras["sketch_rank"] == 103
    # float64, sums over ~100 terms of size ~|λ|: rounding ~1e-13 relative
    assert result.value == pytest.approx(exact, rel=1e-9)
    assert result.extras["stderr"] == pytest.approx(0.0, abs=1e-9 * abs(exact))
    assert result.cost.hvps == 309


def test_hutchpp_beats_hutchinson_at_equal_products_on_a_decaying_spectrum():
    eigenvalues = [10.0 * 0.7**i for i in range(40)]  # a decaying, trained-net-like spectrum
    model = Quadratic(spd_matrix(eigenvalues, seed=4))
    exact = sum(eigenvalues)
    plus = hessian_trace(model, mean_output, ONE_BATCH, probes=30, seed=1)
    plain = hessian_trace(model, mean_output, ONE_BATCH, probes=30, seed=1, method="hutchinson")
    assert plus.cost.hvps == plain.cost.hvps == 30
    assert abs(plus.value - exact) < 4 * plus.extras["stderr"]
    assert abs(plain.value - exact) < 4 * plain.extras["stderr"]
    assert plus.extras["stderr"] < 0.2 * plain.extras["stderr"]


def test_unknown_trace_method_is_refused(classification):
    model, loss_fn, x, y = classification
    with pytest.raises(ValueError, match="method='exact' is not one of"):
        hessian_trace(model, loss_fn, [(x, y)], method="exact")


def test_warm_started_lambda_max_needs_fewer_products_on_a_slowly_changing_model(classification):
    model, loss_fn, x, y = classification
    batches = [(x, y)]
    first = hessian_top_eigenvalue(model, loss_fn, batches, tol=1e-6, max_iter=100, top_k=2)
    loss_fn(model(x), y).backward()
    with torch.no_grad():  # one small gradient step: the Hessian changes a little
        for p in model.parameters():
            p -= 0.01 * p.grad
    exact = torch.linalg.eigvalsh(exact_hessian(model, loss_fn, x, y)).flip(0)[:2]
    cold = hessian_top_eigenvalue(model, loss_fn, batches, tol=1e-6, max_iter=100, top_k=2)
    warm = hessian_top_eigenvalue(
        model, loss_fn, batches, tol=1e-6, max_iter=100, top_k=2, start_vectors=first.warm_start
    )
    assert warm.extras["warm_started"] is True and cold.extras["warm_started"] is False
    assert warm.converged and cold.converged
    assert warm.cost.hvps < cold.cost.hvps
    switched_off = hessian_top_eigenvalue(
        model, loss_fn, batches, tol=1e-6, max_iter=100, top_k=2,
        warm_start=False, start_vectors=first.warm_start,
    )  # fmt: skip
    assert switched_off.extras["warm_started"] is False
    assert switched_off.cost.hvps == cold.cost.hvps
    for result in (warm, cold):
        values = torch.tensor(result.extras["eigenvalues"], dtype=torch.float64)
        torch.testing.assert_close(values, exact, rtol=1e-5, atol=0)
