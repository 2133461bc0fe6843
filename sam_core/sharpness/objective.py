"""The measured loss: the mean over every example of fixed batches, at weights w.

Every measure works through an `Objective`. It flattens the trainable
parameters into one vector, evaluates the loss, its gradient and Hessian-vector
products over all batches (each batch weighted by its size, so two uneven
batches give the loss of their concatenation), moves w temporarily, and counts
what it spent. `measuring` snapshots the model and restores it bit for bit.

``batches`` may be a list or tuple of ``(x, y)`` pairs, any re-iterable
sequence, or a callable returning a fresh iterable on each call (a data loader
factory). A one-shot iterator (a generator) is read once into a list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from sam_core.sharpness.result import CostMeter

Batch = tuple[Tensor, Tensor]
Batches = Iterable[Batch] | Callable[[], Iterable[Batch]]


def as_batch_source(batches: Batches) -> Callable[[], Iterable[Batch]]:
    """A callable that yields the same batches every time it is called."""
    if callable(batches):
        return batches
    if isinstance(batches, Iterator):
        batches = list(batches)
    if isinstance(batches, tuple) and len(batches) == 2 and isinstance(batches[0], Tensor):
        raise ValueError("batches must be an iterable of (x, y) pairs, got a single (x, y) pair")
    return lambda: batches


@contextmanager
def measuring(model: nn.Module) -> Iterator[None]:
    """Puts the whole model in eval mode and restores weights, buffers and modes after.

    Weights are restored by copying the saved values back (bit-exact), never
    by subtracting a perturbation.
    """
    modes = [(m, m.training) for m in model.modules()]
    params = [(p, p.detach().clone()) for p in model.parameters()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    model.eval()
    try:
        yield
    finally:
        with torch.no_grad():
            for tensor, saved in params + buffers:
                tensor.copy_(saved)
        for module, mode in modes:
            module.training = mode


class Objective:
    """L(w) over fixed batches, with w the flattened trainable parameters."""

    def __init__(self, model: nn.Module, loss_fn: Callable[..., Tensor], batches: Batches):
        self.model = model
        self.loss_fn = loss_fn
        self.source = as_batch_source(batches)
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("the model has no trainable parameters to measure")
        first = self.params[0]
        self.device, self.dtype = first.device, first.dtype
        self.dim = sum(p.numel() for p in self.params)
        self.origin = self.flat([p.detach() for p in self.params]).clone()
        self.meter = CostMeter()

    # --- vectors ------------------------------------------------------------

    def flat(self, tensors: Iterable[Tensor]) -> Tensor:
        return torch.cat([t.reshape(-1) for t in tensors])

    def unflat(self, vector: Tensor) -> list[Tensor]:
        pieces = vector.split([p.numel() for p in self.params])
        return [v.view_as(p) for v, p in zip(pieces, self.params, strict=True)]

    def generator(self, seed: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(seed)

    def randn(self, gen: torch.Generator) -> Tensor:
        return torch.randn(self.dim, generator=gen, device=self.device, dtype=self.dtype)

    def rademacher(self, gen: torch.Generator) -> Tensor:
        bits = torch.randint(0, 2, (self.dim,), generator=gen, device=self.device)
        return bits.to(self.dtype) * 2 - 1

    # --- moving w -------------------------------------------------------------

    def set_offset(self, offset: Tensor | None) -> None:
        """Sets w = origin + offset (offset None: back to the origin, bit-exact)."""
        point = self.origin if offset is None else self.origin + offset
        with torch.no_grad():
            for p, value in zip(self.params, self.unflat(point), strict=True):
                p.copy_(value)

    # --- passes -------------------------------------------------------------

    def weighted_losses(self) -> Iterator[tuple[int, Tensor]]:
        """(n_b, n_b · mean loss of batch b) for each batch, with autograd graph."""
        for x, y in self.source():
            n = x.shape[0]
            yield n, self.loss_fn(self.model(x), y) * n

    def loss(self) -> float:
        with torch.no_grad():
            total, count = 0.0, 0
            for n, weighted in self.weighted_losses():
                total, count = total + float(weighted), count + n
        self.meter.forwards += 1
        return total / _nonempty(count)

    def loss_and_grad(self) -> tuple[float, Tensor]:
        total, count = 0.0, 0
        grad = torch.zeros(self.dim, device=self.device, dtype=self.dtype)
        for n, weighted in self.weighted_losses():
            grad += self.flat(grads(weighted, self.params))
            total, count = total + float(weighted.detach()), count + n
        self.meter.grads += 1
        count = _nonempty(count)
        return total / count, grad / count

    def loss_at(self, offset: Tensor) -> float:
        self.set_offset(offset)
        return self.loss()

    def loss_and_grad_at(self, offset: Tensor) -> tuple[float, Tensor]:
        self.set_offset(offset)
        return self.loss_and_grad()


def grads(output: Tensor, params: Sequence[Tensor], **kwargs: Any) -> list[Tensor]:
    """d output / d params, with zeros for parameters the output does not use."""
    return list(
        torch.autograd.grad(output, params, allow_unused=True, materialize_grads=True, **kwargs)
    )


def _nonempty(count: int) -> int:
    if count == 0:
        raise ValueError("batches is empty: there are no examples to measure on")
    return count
