"""scikit-learn digits: split sizes, stratification, scaling and the split seed."""

from __future__ import annotations

import torch

from sam_core.data import load_task


def test_default_split_sizes_and_shapes():
    task = load_task({"name": "digits"})
    assert (task.n_train, task.n_test) == (1347, 450)
    assert task.x_train.shape == (1347, 64) and task.input_shape == (64,)
    assert task.y_train.dtype == torch.int64 and task.num_outputs == 10
    assert task.x_train.min() >= 0.0 and task.x_train.max() <= 1.0


def test_split_is_stratified():
    task = load_task({"name": "digits", "test_fraction": 0.5})
    train = torch.bincount(task.y_train, minlength=10).float()
    test = torch.bincount(task.y_test, minlength=10).float()
    assert (train - test).abs().max() <= 1


def test_split_seed_decides_the_split():
    a = load_task({"name": "digits", "split_seed": 1})
    b = load_task({"name": "digits", "split_seed": 1})
    c = load_task({"name": "digits", "split_seed": 2})
    assert torch.equal(a.x_train, b.x_train)
    assert not torch.equal(a.x_train, c.x_train)
