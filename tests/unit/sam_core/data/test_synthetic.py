"""Synthetic tasks: the right shapes, the promised noise, the right labels, from their seeds."""

from __future__ import annotations

import pytest
import torch

from sam_core.data import DataError, load_task

REGRESSION = [
    {"name": "teacher_student", "teacher": "linear"},
    {"name": "teacher_student", "teacher": "one_hidden"},
    {"name": "kernel_regression"},
    {"name": "relu_teacher"},
]


@pytest.mark.parametrize("spec", REGRESSION, ids=lambda s: s.get("teacher", s["name"]))
def test_noise_around_the_teacher_has_the_asked_sigma(spec):
    task = load_task({**spec, "n_train": 4000, "n_test": 4000, "noise": 0.3})
    for x, y in ((task.x_train, task.y_train), (task.x_test, task.y_test)):
        residual = y - task.teacher(x)
        assert abs(residual.std().item() - 0.3) < 0.02
        assert abs(residual.mean().item()) < 0.02
    assert task.teacher(task.x_train).std() > 0.1  # a signal, not just noise


@pytest.mark.parametrize("spec", REGRESSION, ids=lambda s: s.get("teacher", s["name"]))
def test_regression_tasks_have_float_targets_of_one_column(spec):
    task = load_task({**spec, "n_train": 10, "n_test": 7, "dim": 5})
    assert task.task == "regression" and task.num_outputs == 1 and task.input_shape == (5,)
    assert task.x_train.shape == (10, 5) and task.y_train.shape == (10, 1)
    assert task.x_test.shape == (7, 5) and task.y_test.shape == (7, 1)
    assert task.x_train.dtype == task.y_train.dtype == torch.float32
    assert task.sample_inputs(3, torch.Generator().manual_seed(0)).shape == (3, 5)


def test_zero_noise_gives_the_teacher_exactly():
    task = load_task({"name": "relu_teacher", "noise": 0.0})
    assert torch.equal(task.y_train, task.teacher(task.x_train))


@pytest.mark.parametrize("name", ["teacher_student", "kernel_regression", "relu_teacher"])
def test_same_seed_same_data_other_seed_other_data(name):
    a, b = load_task({"name": name, "data_seed": 4}), load_task({"name": name, "data_seed": 4})
    c = load_task({"name": name, "data_seed": 5})
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)


def test_more_training_examples_leave_the_teacher_and_test_set_alone():
    small = load_task({"name": "teacher_student", "n_train": 10})
    large = load_task({"name": "teacher_student", "n_train": 50})
    assert torch.equal(small.x_test, large.x_test) and torch.equal(small.y_test, large.y_test)
    assert torch.equal(large.x_train[:10], small.x_train)


def test_loading_leaves_the_global_generator_untouched():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    load_task({"name": "kernel_regression"})
    load_task({"name": "sparse_parity"})
    assert torch.equal(before, torch.get_rng_state())


def test_sparse_parity_labels_are_the_parity_of_the_first_k_bits():
    task = load_task({"name": "sparse_parity", "n_bits": 10, "k": 3, "n_train": 500})
    x, y = task.x_train, task.y_train
    assert set(x.unique().tolist()) == {-1.0, 1.0}
    expected = (x[:, :3].prod(1) < 0).long()  # an odd number of −1 makes the product −1
    assert torch.equal(y, expected) and y.dtype == torch.int64
    assert task.task == "classification" and task.num_outputs == 2
    assert 0.4 < y.float().mean() < 0.6
    # The other bits say nothing: flipping one leaves the label alone.
    x_flipped = x.clone()
    x_flipped[:, 5] *= -1
    assert torch.equal(task.teacher(x_flipped), y)


def test_sparse_parity_refuses_k_beyond_n_bits():
    with pytest.raises(DataError, match=r"k ≤ n_bits, got k=5, n_bits=4"):
        load_task({"name": "sparse_parity", "n_bits": 4, "k": 5})
