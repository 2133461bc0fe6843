"""Which training examples each step sees: the data package's sampler, fed by the run.

`sam_core.data.make_sampler` draws one epoch of index batches per `iter()` from an
explicit generator and knows how to resume mid-epoch (its `state_dict`). What it
cannot know is the model: for importance sampling, a model linear in its parameters
gets its exact smoothness constants once, at the first epoch; any other model's
scores are refreshed from the current weights at the start of every epoch (see
`importance`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from sam_core.data import Batch, ImportanceSampler, make_sampler
from sam_core.training import importance


class EpochSampler:
    """The run's batches `(x, y, weights)`, epoch after epoch."""

    def __init__(
        self, spec: Any, task: Any, generator: torch.Generator, device: torch.device
    ) -> None:
        self.task, self.device = task, device
        self.sampling = spec.effective_sampling
        self.batch_size = spec.data.batch_size
        self.score_batch_size = spec.measure.batch_size
        # Until the model is seen, assume its scores need refreshing (a network).
        self.refresh_scores = self.sampling == "importance"
        self.closed_form_checked = False
        self.sampler = make_sampler(
            self.sampling,
            len(task.x_train),
            self.batch_size,
            tau=spec.data.tau,
            generator=generator,
            reweight=spec.data.reweight,
        )
        self.steps_per_epoch = self.sampler.steps_per_epoch
        self.batches: Iterator[Batch] | None = None

    def next_batch(
        self, model: nn.Module, step: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The batch of step `step` (counted from 0); weights are None unless reweighted."""
        index, weights = self.next_indices(model, step)
        return self.task.x_train[index], self.task.y_train[index], weights

    def next_indices(self, model: nn.Module, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The example indices (on the device) and loss weights of step `step`.

        A seed ensemble draws each member's indices here and gathers all members'
        examples at once; `model` is read only to refresh importance scores.
        """
        starts_epoch = step % self.steps_per_epoch == 0
        if starts_epoch and self.refresh_scores and isinstance(self.sampler, ImportanceSampler):
            self.sampler.set_probabilities(self.importance_scores(model))
        if starts_epoch or self.batches is None:
            self.batches = iter(self.sampler)
        index, weights = next(self.batches)
        index = index.to(self.device)
        if weights is not None:
            weights = weights.to(self.device)
        return index, weights

    def importance_scores(self, model: nn.Module) -> torch.Tensor:
        """L_i in closed form when the model is linear in its parameters (then never
        refreshed), else the output-gradient scores at the current weights."""
        if not self.closed_form_checked:
            self.closed_form_checked = True
            exact = importance.closed_form_smoothness(
                model, self.task.x_train, self.score_batch_size
            )
            if exact is not None:
                self.refresh_scores = False
                return exact
        return importance.output_gradient_probabilities(
            model, self.task.x_train, self.task.y_train, self.task.task, self.score_batch_size
        )

    def state(self) -> dict[str, Any]:
        return self.sampler.state_dict()

    def load_state(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state)
        self.batches = None
