"""evaluate: loss and accuracy in eval mode; prediction_error: distance to the teacher."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sam_core.sharpness import evaluate, prediction_error


def test_evaluate_gives_mean_loss_and_accuracy_over_uneven_batches(classification):
    model, loss_fn, x, y = classification
    model.train()
    loss, accuracy = evaluate(model, loss_fn, [(x[:10], y[:10]), (x[10:], y[10:])])
    assert loss == pytest.approx(loss_fn(model(x), y).item(), rel=1e-12)
    assert accuracy == pytest.approx((model(x).argmax(1) == y).double().mean().item())
    assert model.training


def test_evaluate_regression_has_no_accuracy_and_uses_running_bn_stats(bn_regression):
    model, loss_fn, x, y = bn_regression
    model.eval()
    expected = loss_fn(model(x), y).item()
    model.train()
    before = model[1].running_mean.clone()
    loss, accuracy = evaluate(model, loss_fn, [(x, y)])
    assert (loss, accuracy) == (pytest.approx(expected, rel=1e-12), None)
    assert torch.equal(model[1].running_mean, before)


def test_prediction_error_is_the_mean_squared_distance_to_the_teacher():
    torch.manual_seed(0)
    model = nn.Linear(3, 2).double()
    teacher = nn.Linear(3, 2).double()
    x = torch.randn(40, 3, dtype=torch.float64)
    noisy = teacher(x).detach() + 0.5
    expected = ((model(x) - teacher(x)) ** 2).mean().item()
    with_teacher = prediction_error(
        model, nn.MSELoss(), [(x[:15], noisy[:15]), (x[15:], noisy[15:])], teacher=teacher
    )
    with_targets = prediction_error(model, nn.MSELoss(), [(x, teacher(x).detach())])
    assert with_teacher.value == pytest.approx(expected, rel=1e-12)
    assert with_targets.value == pytest.approx(expected, rel=1e-12)


def test_prediction_error_on_class_labels_is_a_value_error(classification):
    model, loss_fn, x, y = classification
    with pytest.raises(ValueError, match="shaped like the outputs"):
        prediction_error(model, loss_fn, [(x, y)])
