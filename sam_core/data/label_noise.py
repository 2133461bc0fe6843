"""Symmetric label noise: a fixed fraction of training labels moved to another class."""

from __future__ import annotations

import torch

from sam_core.data.task import DataError, TaskData, seeded_generator

LABEL_NOISE_STREAM = 7


def flip_labels(labels: torch.Tensor, fraction: float, num_classes: int, seed: int) -> torch.Tensor:
    """A copy of `labels` with round(fraction · n) of them, chosen at random, each replaced
    by a different class drawn uniformly from the other num_classes − 1."""
    if not 0.0 <= fraction <= 1.0:
        raise DataError(f"label_noise must lie in [0, 1], got {fraction}")
    if fraction > 0 and num_classes < 2:
        raise DataError(f"label noise needs at least 2 classes, got {num_classes}")
    generator = seeded_generator(seed, LABEL_NOISE_STREAM)
    count = round(fraction * len(labels))
    chosen = torch.randperm(len(labels), generator=generator)[:count]
    # Adding 1 … C−1 modulo C lands on every other class with equal probability.
    shift = torch.randint(1, max(num_classes, 2), (count,), generator=generator)
    noisy = labels.clone()
    noisy[chosen] = (labels[chosen] + shift) % num_classes
    return noisy


def with_label_noise(task: TaskData, fraction: float, seed: int) -> TaskData:
    """The task with noisy training labels; the test labels stay clean."""
    if fraction == 0:
        return task
    if task.task != "classification":
        raise DataError(
            f"label_noise applies to classification; {task.name!r} is a regression set "
            "(its targets' noise is the data set's own `noise` σ)"
        )
    task.y_train = flip_labels(task.y_train, fraction, task.num_outputs, seed)
    task.description += f", {fraction:g} of training labels flipped"
    return task
