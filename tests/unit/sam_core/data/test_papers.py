"""The XOR hypercube and the prescribed-spectrum least squares of the seed papers."""

from __future__ import annotations

import pytest
import torch

from sam_core.data import load_task
from sam_core.data.papers import quadratic_design, sign_error
from sam_core.spec.catalog import QuadraticParams


def test_xor_is_plus_minus_one_with_y_the_product_of_the_first_two_bits():
    task = load_task({"name": "xor", "dim": 30, "n_train": 100, "n_test": 500, "data_seed": 3})
    assert task.x_train.shape == (100, 30) and task.x_test.shape == (500, 30)
    assert task.task == "regression" and task.num_outputs == 1
    for x, y in ((task.x_train, task.y_train), (task.x_test, task.y_test)):
        assert set(x.unique().tolist()) == {-1.0, 1.0}
        assert torch.equal(y.flatten(), x[:, 0] * x[:, 1])
    # Both labels occur about equally often on 500 fresh points.
    assert 0.4 < float((task.y_test > 0).float().mean()) < 0.6
    again = load_task({"name": "xor", "dim": 30, "n_train": 100, "n_test": 500, "data_seed": 3})
    assert torch.equal(again.x_train, task.x_train)
    assert not torch.equal(again.x_train, task.x_test[:100])


def test_sign_error_counts_wrong_signs_and_zeros():
    targets = torch.tensor([[1.0], [-1.0], [1.0], [-1.0]])
    assert sign_error(torch.tensor([[0.3], [-2.0], [-0.1], [0.0]]), targets) == 0.5


@pytest.mark.parametrize("rotate", [False, True])
def test_quadratic_hessian_has_exactly_the_eigenvalues_asked(rotate):
    eigenvalues = [10.0, 4.0, 2.5, 1.0, 0.5]
    params = QuadraticParams(eigenvalues=eigenvalues, rotate=rotate, targets="consistent")
    a, b, x_star = quadratic_design(params)
    # MSE (1/n)‖Aw − b‖² has the Hessian (2/n)AᵀA.
    hessian = 2.0 / len(a) * a.T @ a
    got = torch.linalg.eigvalsh(hessian).flip(0)
    torch.testing.assert_close(got, torch.tensor(eigenvalues, dtype=torch.float64))
    torch.testing.assert_close(a @ x_star, b)
    if not rotate:  # rows are axis-aligned: ‖a_i‖² = nλ_i/2, the per-example smoothness
        torch.testing.assert_close(
            a.pow(2).sum(1), torch.tensor(eigenvalues, dtype=torch.float64) * len(a) / 2
        )


def test_quadratic_zero_targets_make_the_loss_half_w_h_w():
    task = load_task({"name": "quadratic", "eigenvalues": [3.0, 1.0], "targets": "zero"})
    w = torch.tensor([[0.7], [-1.2]])
    loss = ((task.x_train @ w - task.y_train) ** 2).mean()
    a, _, _ = quadratic_design(QuadraticParams(eigenvalues=[3.0, 1.0]))
    hessian = 2.0 / 2 * a.T @ a
    expected = 0.5 * (w.double().T @ hessian @ w.double()).item()
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_noise_seed_moves_only_the_training_noise():
    spec = {"name": "teacher_student", "teacher": "linear", "dim": 4, "n_train": 20, "noise": 1.0}
    a = load_task({**spec, "noise_seed": 1})
    b = load_task({**spec, "noise_seed": 2})
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_test, b.x_test)
    assert torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y_train, b.y_train)
    torch.testing.assert_close(a.teacher(a.x_test), b.teacher(b.x_test))
