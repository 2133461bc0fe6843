"""The validation split: a seeded share of the training examples held out for tuning.

Hyperparameter searches read the validation metrics, never the test set's
(the protocol of DeepOBS, Schneider et al. 2019, and AlgoPerf, Dahl et al. 2023:
tune on held-out training data, report on test data).
"""

from __future__ import annotations

import torch

from sam_core.data.task import DataError, TaskData, seeded_generator

VALIDATION_STREAM = 8


def with_validation_split(task: TaskData, fraction: float, seed: int) -> TaskData:
    """The task with round(fraction · n_train) training examples moved to `x_val`/`y_val`.

    The examples are a uniform draw without replacement from stream 8 of `seed`
    (the data set's own seed), so every run on the same data set holds out the
    same examples. `fraction` 0 leaves the task as it is (no validation split).

    Raises `DataError` when `fraction` is outside [0, 1) or leaves either part empty.
    """
    if fraction == 0:
        return task
    if not 0.0 < fraction < 1.0:
        raise DataError(f"data.validation_fraction must lie in [0, 1), got {fraction}")
    n = task.n_train
    count = round(fraction * n)
    if count < 1 or count >= n:
        raise DataError(
            f"data.validation_fraction {fraction:g} of {n} training examples leaves "
            f"{count} for validation and {n - count} for training; both need at least one"
        )
    order = torch.randperm(n, generator=seeded_generator(seed, VALIDATION_STREAM))
    held, kept = order[:count].sort().values, order[count:].sort().values
    task.x_val, task.y_val = task.x_train[held], task.y_train[held]
    task.x_train, task.y_train = task.x_train[kept], task.y_train[kept]
    task.description += f", {count} training examples held out for validation"
    return task
