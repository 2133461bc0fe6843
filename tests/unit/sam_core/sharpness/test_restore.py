"""Every measure leaves the model as it found it, weighs batches by size, and is seeded."""

from __future__ import annotations

import pytest
import torch

from sam_core import sharpness
from sam_core.spec.catalog import MEASURES

# Cheap parameters so that the whole family runs in well under a second each.
SMALL: dict[str, dict] = {
    "hessian_top_eigenvalue": {"max_iter": 8},
    "hessian_trace": {"probes": 4},
    "hessian_density": {"iters": 6},
    "worst_case_sharpness": {"steps": 3},
    "average_sharpness": {"samples": 4},
    "adaptive_sharpness": {"steps": 3},
    "m_sharpness": {"m": 16, "steps": 2},
    "grad_eigvec_alignment": {"max_iter": 8},
    "loss_landscape_1d": {"points": 5},
    "loss_landscape_2d": {"points": 3},
}
REGRESSION_ONLY = {name for name, info in MEASURES.items() if info.task == "regression"}
RANDOM = ["hessian_trace", "average_sharpness", "loss_landscape_1d", "loss_landscape_2d"]


def _snapshot(model):
    state = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    return state, modes


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_measure_leaves_weights_buffers_and_modes_untouched(name, bn_regression):
    model, loss_fn, x, y = bn_regression
    model[3].eval()  # a mixed-mode model: each module gets its own mode back
    before_state, before_modes = _snapshot(model)
    result = sharpness.compute(
        name, model, loss_fn, [(x[:30], y[:30]), (x[30:], y[30:])], **SMALL.get(name, {})
    )
    after_state, after_modes = _snapshot(model)
    assert after_modes == before_modes
    for key, value in before_state.items():
        assert torch.equal(after_state[key], value), key  # bit-identical, BN buffers included
    assert all(p.grad is None for p in model.parameters())
    assert isinstance(result.value, float)
    assert result.cost.seconds >= 0


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_two_uneven_batches_equal_their_concatenation(name, bn_regression):
    model, loss_fn, x, y = bn_regression
    params = SMALL.get(name, {})
    whole = sharpness.compute(name, model, loss_fn, [(x, y)], seed=3, **params)
    split = sharpness.compute(
        name, model, loss_fn, [(x[:13], y[:13]), (x[13:], y[13:])], seed=3, **params
    )
    assert split.value == pytest.approx(whole.value, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", sorted(set(MEASURES) - REGRESSION_ONLY))
def test_same_seed_same_result(name, classification):
    model, loss_fn, x, y = classification
    params = SMALL.get(name, {})
    first = sharpness.compute(name, model, loss_fn, [(x, y)], seed=11, **params)
    again = sharpness.compute(name, model, loss_fn, [(x, y)], seed=11, **params)
    assert (again.value, again.extras) == (first.value, first.extras)


@pytest.mark.parametrize("name", RANDOM)
def test_another_seed_draws_other_directions(name, classification):
    model, loss_fn, x, y = classification
    params = SMALL.get(name, {})
    first = sharpness.compute(name, model, loss_fn, [(x, y)], seed=0, **params)
    other = sharpness.compute(name, model, loss_fn, [(x, y)], seed=1, **params)
    assert other.value != first.value


def test_measures_use_eval_mode_batchnorm(bn_regression):
    model, loss_fn, x, y = bn_regression
    model.eval()
    eval_loss = loss_fn(model(x), y).item()
    model.train()
    result = sharpness.loss_landscape_1d(model, loss_fn, [(x[:7], y[:7]), (x[7:], y[7:])], points=3)
    assert result.extras["loss"] == pytest.approx(eval_loss, rel=1e-12)
    assert model.training


def test_a_generator_of_batches_is_read_once_and_reused(classification):
    model, loss_fn, x, y = classification
    listed = sharpness.worst_case_sharpness(model, loss_fn, [(x[:50], y[:50]), (x[50:], y[50:])])
    once = sharpness.worst_case_sharpness(
        model, loss_fn, ((x[i : i + 50], y[i : i + 50]) for i in (0, 50))
    )
    assert once.value == listed.value


def test_empty_batches_are_a_value_error(classification):
    model, loss_fn, _, _ = classification
    with pytest.raises(ValueError, match="batches is empty"):
        sharpness.hessian_trace(model, loss_fn, [], probes=2)
