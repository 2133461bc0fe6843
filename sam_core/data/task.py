"""What a loaded data set is (`TaskData`), its error, and the seeded generators it uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from sam_core.data.errors import DataError as DataError  # re-exported: its old home

Teacher = Callable[[torch.Tensor], torch.Tensor]
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
InputSampler = Callable[[int, torch.Generator], torch.Tensor]


@dataclass
class TaskData:
    """A data set in memory, ready to train on.

    Inputs are float32 of shape (n, *input_shape). Labels are int64 of shape (n,)
    for classification and float32 of shape (n, num_outputs) for regression.
    `teacher` is the noiseless target of a synthetic task (x → y, on x's device),
    `sample_inputs(n, generator)` draws fresh inputs from its input distribution
    (both None for real data), and `augment(x_batch, generator)` is the training
    augmentation (None where there is none). `x_val`, `y_val` are the validation
    examples held out of the training set (None without a validation split).
    """

    name: str
    description: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    task: Literal["classification", "regression"]
    num_outputs: int
    input_shape: tuple[int, ...]
    teacher: Teacher | None = None
    augment: Augment | None = None
    sample_inputs: InputSampler | None = None
    # the validation split carved from the training data (`data.validation_fraction`)
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    @property
    def n_test(self) -> int:
        return len(self.x_test)


def seeded_generator(seed: int, stream: int) -> torch.Generator:
    """A CPU generator for one stream (teacher, train inputs, test inputs, …) of `seed`.

    numpy's SeedSequence mixes (seed, stream), so streams never overlap and any
    non-negative seed works.
    """
    mixed = np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(mixed))
