"""Loss-landscape slices along filter-normalised directions (Li et al. 2018)."""

from __future__ import annotations

import pytest
import torch

from sam_core.sharpness import loss_landscape_1d, loss_landscape_2d
from sam_core.sharpness.landscape import filter_normalized_direction
from sam_core.sharpness.objective import Objective

from .conftest import Quadratic, mean_output, spd_matrix


def test_direction_has_the_weights_filter_norms_and_zero_on_biases(classification):
    model, loss_fn, x, y = classification
    objective = Objective(model, loss_fn, [(x, y)])
    direction = objective.unflat(filter_normalized_direction(objective, objective.generator(0)))
    for d, p in zip(direction, objective.params, strict=True):
        if p.dim() == 1:
            assert torch.count_nonzero(d) == 0
        else:
            torch.testing.assert_close(d.norm(dim=1), p.detach().norm(dim=1))


def test_1d_slice_passes_through_the_current_loss(classification):
    model, loss_fn, x, y = classification
    result = loss_landscape_1d(model, loss_fn, [(x, y)], points=5, span=0.5)
    assert result.extras["alphas"] == [-0.5, -0.25, 0.0, 0.25, 0.5]
    base = loss_fn(model(x), y).item()
    assert result.extras["loss"] == pytest.approx(base, rel=1e-12)
    assert result.extras["losses"][2] == pytest.approx(base, rel=1e-12)
    assert result.value == pytest.approx(max(result.extras["losses"]) - base, rel=1e-12)
    assert result.cost.forwards == 6


def test_2d_grid_shape_and_centre(classification):
    model, loss_fn, x, y = classification
    result = loss_landscape_2d(model, loss_fn, [(x, y)], points=3, span=1.0)
    losses = result.extras["losses"]
    assert [len(row) for row in losses] == [3, 3, 3]
    assert losses[1][1] == pytest.approx(result.extras["loss"], rel=1e-12)
    assert all(isinstance(v, float) for row in losses for v in row)


def test_a_model_of_only_one_dimensional_parameters_has_a_flat_slice():
    model = Quadratic(spd_matrix([2.0, 1.0]), start=torch.ones(2, dtype=torch.float64))
    result = loss_landscape_1d(model, mean_output, [(torch.zeros(2, 1), torch.zeros(2))])
    assert result.value == 0.0
    assert set(result.extras["losses"]) == {result.extras["loss"]}
