"""Which examples each step trains on: uniform, full, τ-nice and importance sampling.

A sampler yields one epoch of `Batch(indices, weights)` per `iter()`: a
LongTensor of example indices and, for reweighted importance sampling, the
per-example loss weights 1/(n q_i) (else None). All its randomness comes from
the generator it is given, which nothing else may draw from.

Resuming mid-epoch: `state_dict()` records the generator's state at the start
of the current epoch and how many batches of it were handed out. After
`load_state_dict()`, the next `iter()` sets the generator back to that state,
draws the epoch again (the same draws) and skips the batches already handed
out, so a resumed run sees the very batches the uninterrupted one would have.
The state holds only tensors and plain values (`torch.load(weights_only=True)`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, NamedTuple

import torch

KINDS = ("uniform", "full", "tau_nice", "importance")


class Batch(NamedTuple):
    indices: torch.Tensor
    weights: torch.Tensor | None


class Sampler(ABC):
    """The epoch bookkeeping and resumption every kind shares; kinds draw `_epoch()`."""

    kind = ""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator) -> None:
        if n < 1:
            raise ValueError(f"a sampler needs at least one example, got n={n}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.n = n
        self.batch_size = batch_size
        self.generator = generator
        self.epoch = 0
        self._position = 0
        self._epoch_start = generator.get_state()

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __len__(self) -> int:
        return self.steps_per_epoch

    @abstractmethod
    def _epoch(self) -> Iterator[Batch]:
        """Draw one epoch's batches from `self.generator`, lazily, nothing after the last."""

    def _start_epoch(self) -> None:
        """Hook run once at the start of each fresh epoch (not on a replay)."""
        return

    def __iter__(self) -> Iterator[Batch]:
        if self._position >= self.steps_per_epoch:
            self._finish_epoch()
        skip = self._position
        if skip:
            self.generator.set_state(self._epoch_start)
        else:
            self._epoch_start = self.generator.get_state()
            self._start_epoch()
        for k, batch in enumerate(self._epoch()):
            if k >= skip:
                self._position = k + 1
                yield batch
        self._finish_epoch()

    def _finish_epoch(self) -> None:
        self._position = 0
        self.epoch += 1

    def state_dict(self) -> dict[str, Any]:
        mid_epoch = 0 < self._position < self.steps_per_epoch
        done = self._position >= self.steps_per_epoch
        return {
            "kind": self.kind,
            "n": self.n,
            "batch_size": self.batch_size,
            "epoch": self.epoch + int(done),
            "position": self._position if mid_epoch else 0,
            "generator": (self._epoch_start if mid_epoch else self.generator.get_state()).clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mine = (self.kind, self.n, self.batch_size)
        theirs = (state["kind"], state["n"], state["batch_size"])
        if mine != theirs:
            raise ValueError(f"sampler state is for (kind, n, batch_size) {theirs}, not {mine}")
        self.epoch = int(state["epoch"])
        self._position = int(state["position"])
        self._epoch_start = state["generator"].clone()
        self.generator.set_state(self._epoch_start)


class UniformSampler(Sampler):
    """A fresh random permutation each epoch, cut into batches. The last batch keeps
    the n mod batch_size examples left over, so each example is seen once per epoch."""

    kind = "uniform"

    def _epoch(self) -> Iterator[Batch]:
        order = torch.randperm(self.n, generator=self.generator, device=self.generator.device)
        for start in range(0, self.n, self.batch_size):
            yield Batch(order[start : start + self.batch_size], None)


class FullSampler(Sampler):
    """Every example, in order, once per step; one step per epoch (GD, full-batch SAM)."""

    kind = "full"

    def __init__(self, n: int, generator: torch.Generator) -> None:
        super().__init__(n, n, generator)

    def _epoch(self) -> Iterator[Batch]:
        yield Batch(torch.arange(self.n), None)


class TauNiceSampler(Sampler):
    """Each step a subset of size τ drawn uniformly among all subsets of that size,
    independently of the other steps; n // τ steps make an epoch."""

    kind = "tau_nice"

    def __init__(self, n: int, tau: int, generator: torch.Generator) -> None:
        if not 1 <= tau <= n:
            raise ValueError(f"tau_nice needs 1 ≤ tau ≤ n = {n}, got tau={tau}")
        super().__init__(n, tau, generator)

    @property
    def steps_per_epoch(self) -> int:
        return self.n // self.batch_size

    def _epoch(self) -> Iterator[Batch]:
        for _ in range(self.steps_per_epoch):
            order = torch.randperm(self.n, generator=self.generator, device=self.generator.device)
            yield Batch(order[: self.batch_size], None)


class ImportanceSampler(Sampler):
    """Example i drawn with probability q_i, with replacement (Unified SAM's arbitrary
    sampling). With `reweight`, each drawn loss is weighted by 1/(n q_i), so the
    weighted mean gradient is an unbiased estimate of the full gradient:
    E[1/(n q_i) ∇ℓ_i] = Σ_i q_i ∇ℓ_i / (n q_i) = ∇L.

    `set_probabilities(q)` takes effect at the start of the next epoch, so that q is
    fixed within an epoch and a resumed run replays it; q starts uniform.
    """

    kind = "importance"

    def __init__(
        self,
        n: int,
        batch_size: int,
        generator: torch.Generator,
        scores: torch.Tensor | None = None,
        reweight: bool = True,
    ) -> None:
        super().__init__(n, batch_size, generator)
        self.reweight = reweight
        self.probabilities = torch.full((n,), 1.0 / n, dtype=torch.float64)
        self._pending: torch.Tensor | None = None
        if scores is not None:
            self.set_probabilities(scores)

    def set_probabilities(self, scores: torch.Tensor) -> None:
        """Draw example i with probability scores_i / Σ scores from the next epoch on."""
        q = torch.as_tensor(scores, dtype=torch.float64).detach().cpu().reshape(-1)
        if q.shape != (self.n,):
            raise ValueError(f"need {self.n} importance scores, got shape {tuple(q.shape)}")
        if not torch.isfinite(q).all() or (q < 0).any() or q.sum() <= 0:
            raise ValueError("importance scores must be finite, non-negative and not all zero")
        self._pending = q / q.sum()

    def _start_epoch(self) -> None:
        if self._pending is not None:
            self.probabilities, self._pending = self._pending, None

    def _epoch(self) -> Iterator[Batch]:
        draws = self.steps_per_epoch * self.batch_size
        q = self.probabilities.to(self.generator.device)
        picks = torch.multinomial(q, draws, replacement=True, generator=self.generator).cpu()
        for start in range(0, draws, self.batch_size):
            indices = picks[start : start + self.batch_size]
            weights = None
            if self.reweight:
                weights = 1.0 / (self.n * self.probabilities[indices])  # float64
            yield Batch(indices, weights)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["reweight"] = self.reweight
        state["probabilities"] = self.probabilities.clone()
        state["pending"] = None if self._pending is None else self._pending.clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.reweight = bool(state["reweight"])
        self.probabilities = state["probabilities"].clone()
        pending = state["pending"]
        self._pending = None if pending is None else pending.clone()


def make_sampler(
    kind: str,
    n: int,
    batch_size: int,
    *,
    tau: int | None = None,
    generator: torch.Generator,
    weights: torch.Tensor | None = None,
    reweight: bool = True,
) -> Sampler:
    """The sampler `kind` over n examples (`spec.data.sampling`, `batch_size`, `tau`).

    `weights` are importance scores L_i (q_i ∝ L_i; uniform when omitted), and
    `reweight` whether importance-sampled losses carry 1/(n q_i).
    """
    if kind == "uniform":
        return UniformSampler(n, batch_size, generator)
    if kind == "full":
        return FullSampler(n, generator)
    if kind == "tau_nice":
        if tau is None:
            raise ValueError("sampling 'tau_nice' needs tau, the subset size")
        return TauNiceSampler(n, tau, generator)
    if kind == "importance":
        return ImportanceSampler(n, batch_size, generator, weights, reweight)
    raise ValueError(f"unknown sampling {kind!r}; known: {', '.join(KINDS)}")


def linear_importance(x: torch.Tensor) -> torch.Tensor:
    """‖x_i‖²: L_i (up to a common factor) of a bias-free model linear in the raw inputs x.

    A model linear in features ψ(x) (random features, a kernel model) or with a
    bias has L_i = ‖ψ(x_i)‖² (+ 1 with the bias): the training loop takes those
    from the model (`sam_core.training.importance.closed_form_smoothness`).
    """
    return x.flatten(1).double().pow(2).sum(1)
