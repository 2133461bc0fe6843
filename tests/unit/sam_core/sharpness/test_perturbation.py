"""Worst-case, ascent, average, adaptive and m-sharpness against closed forms (sam-spec §3.13)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sam_core.sharpness import (
    adaptive_sharpness,
    ascent_sharpness,
    average_sharpness,
    m_sharpness,
    worst_case_sharpness,
)

from .conftest import Quadratic, mean_output, spd_matrix

ONE_BATCH = [(torch.zeros(3, 1), torch.zeros(3))]
EIGENVALUES = [5.0, 1.0, 0.5, -2.0]


def test_worst_case_at_a_minimum_is_rho_squared_lambda_max_over_two():
    model = Quadratic(spd_matrix(EIGENVALUES))
    rho = 0.1
    result = worst_case_sharpness(model, mean_output, ONE_BATCH, rho=rho, steps=10)
    names = [start["start"] for start in result.extras["starts"]]
    # g = 0 at w = 0: no gradient start
    assert names == ["+v1", "-v1", "+v2", "-v2", "random1", "random2", "random3"]
    assert result.extras["best_start"] in ("+v1", "-v1")
    assert result.converged is True
    assert result.value == pytest.approx(rho**2 * 5.0 / 2, rel=0.01)
    assert result.value <= rho**2 * 5.0 / 2 + 1e-15  # every point tried lies in the ball


def test_ascent_at_a_non_stationary_point_matches_the_closed_form():
    matrix = spd_matrix(EIGENVALUES, seed=1)
    w = torch.tensor([0.3, -0.2, 0.5, 0.1], dtype=torch.float64)
    rho = 0.07
    aw = matrix @ w
    exact = rho * aw.norm() + rho**2 * (aw @ matrix @ aw) / (2 * aw.norm() ** 2)
    result = ascent_sharpness(Quadratic(matrix, start=w), mean_output, ONE_BATCH, rho=rho)
    assert result.value == pytest.approx(exact.item(), rel=1e-10)
    assert result.extras["grad_norm"] == pytest.approx(aw.norm().item(), rel=1e-12)
    assert result.cost.grads == 1


def test_one_step_of_worst_case_is_the_ascent_step():
    model = Quadratic(spd_matrix(EIGENVALUES, seed=2), start=torch.ones(4, dtype=torch.float64))
    one_step = worst_case_sharpness(model, mean_output, ONE_BATCH, rho=0.2, steps=1)
    ascent = ascent_sharpness(model, mean_output, ONE_BATCH, rho=0.2)
    gradient_start = one_step.extras["starts"][0]
    assert gradient_start["start"] == "gradient"
    assert gradient_start["value"] == ascent.value
    assert one_step.value >= ascent.value
    more = worst_case_sharpness(model, mean_output, ONE_BATCH, rho=0.2, steps=20)
    assert more.value >= ascent.value


def test_average_at_a_minimum_is_sigma_squared_trace_over_two_within_its_stderr():
    matrix = spd_matrix([3.0, 2.0, 1.0, 0.5, 0.25], seed=3)
    sigma = 0.05
    result = average_sharpness(Quadratic(matrix), mean_output, ONE_BATCH, sigma=sigma, samples=2000)
    exact = sigma**2 * torch.trace(matrix).item() / 2
    stderr = result.extras["stderr"]
    assert abs(result.value - exact) < 4 * stderr
    assert stderr < 0.05 * exact
    assert result.cost.forwards == 2001


def _relu_net():
    torch.manual_seed(5)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).double()


def _rescaled(model, alpha):
    """The same function: the ReLU layer times α (weights and bias), the next weight over α."""
    other = _relu_net()
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        other[0].weight.mul_(alpha)
        other[0].bias.mul_(alpha)
        other[2].weight.div_(alpha)
    return other


def test_adaptive_sharpness_is_invariant_to_relu_layer_rescaling():
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(64, 4, generator=gen, dtype=torch.float64)
    y = torch.randn(64, 2, generator=gen, dtype=torch.float64)
    model = _relu_net()
    scaled = _rescaled(model, 4.0)
    torch.testing.assert_close(scaled(x), model(x))
    loss_fn, batches = nn.MSELoss(), [(x, y)]
    plain = adaptive_sharpness(model, loss_fn, batches, rho=0.05, eta=0.0, steps=5)
    moved = adaptive_sharpness(scaled, loss_fn, batches, rho=0.05, eta=0.0, steps=5)
    assert moved.value == pytest.approx(plain.value, rel=1e-9)
    # the plain worst case is not invariant: the contrast the adaptive measure exists for
    a = worst_case_sharpness(model, loss_fn, batches, rho=0.05, steps=5).value
    b = worst_case_sharpness(scaled, loss_fn, batches, rho=0.05, steps=5).value
    assert not math.isclose(a, b, rel_tol=0.05)


def test_adaptive_with_uniform_scale_is_the_plain_worst_case_of_the_scaled_ball():
    # All |w| + η equal to c: the ellipsoid is the ball of radius ρc.
    model = Quadratic(spd_matrix(EIGENVALUES, seed=7))
    result = adaptive_sharpness(model, mean_output, ONE_BATCH, rho=0.1, eta=2.0, steps=10)
    assert result.value == pytest.approx((0.1 * 2.0) ** 2 * 5.0 / 2, rel=0.01)


@pytest.mark.parametrize("examples", [96, 100])
def test_m_sharpness_is_the_mean_of_per_chunk_worst_cases(classification, examples):
    model, loss_fn, x, y = classification
    x, y = torch.cat([x, x[:4]])[:examples], torch.cat([y, y[:4]])[:examples]
    batches = [(x[:40], y[:40]), (x[40:], y[40:])]
    result = m_sharpness(model, loss_fn, batches, rho=0.05, m=32, steps=3, seed=1)
    per_chunk = [
        worst_case_sharpness(
            model, loss_fn, [(x[i : i + 32], y[i : i + 32])], rho=0.05, steps=3, seed=1
        )
        for i in (0, 32, 64)
    ]
    assert result.extras["chunks"] == 3  # a shorter last chunk is dropped
    assert result.value == pytest.approx(sum(r.value for r in per_chunk) / 3, rel=1e-12)
    # each chunk pass counts as a third of a pass over the set
    assert result.cost.grads == pytest.approx(sum(r.cost.grads for r in per_chunk) / 3)
    assert result.cost.hvps == pytest.approx(sum(r.cost.hvps for r in per_chunk) / 3)
