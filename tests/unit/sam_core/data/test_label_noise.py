"""Label noise: exactly the fraction asked, always to another class, seeded, classification only."""

from __future__ import annotations

import pytest
import torch

from sam_core.data import DataError, load_task
from sam_core.data.label_noise import flip_labels


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 1.0])
def test_flips_exactly_the_fraction_each_to_a_different_class(fraction):
    labels = torch.arange(1000) % 10
    noisy = flip_labels(labels, fraction, 10, seed=0)
    assert (noisy != labels).sum().item() == round(fraction * 1000)
    assert noisy.min() >= 0 and noisy.max() <= 9


def test_new_classes_are_spread_over_the_others():
    labels = torch.zeros(9000, dtype=torch.int64)
    counts = torch.bincount(flip_labels(labels, 1.0, 4, seed=1), minlength=4)
    assert counts[0] == 0 and ((counts[1:] - 3000).abs() < 200).all()


def test_digits_training_labels_are_flipped_test_labels_are_not():
    clean = load_task({"name": "digits"})
    noisy = load_task({"name": "digits", "label_noise": 0.2})
    again = load_task({"name": "digits", "label_noise": 0.2})
    assert (noisy.y_train != clean.y_train).sum().item() == round(0.2 * clean.n_train)
    assert torch.equal(noisy.y_test, clean.y_test)
    assert torch.equal(noisy.y_train, again.y_train)


def test_regression_refuses_label_noise():
    with pytest.raises(DataError, match=r"label_noise applies to classification.*`noise` σ"):
        load_task({"name": "teacher_student", "label_noise": 0.1})
