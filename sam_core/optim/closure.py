"""The closure the trainer hands to ``optimizer.step``: one batch, forward and backward.

A plain ``closure()`` is enough for most rules. ESAM needs per-example losses
(to rank examples) and a pass on a subset; m-SAM needs passes on chunks. A
``BatchClosure`` offers all three, computes per-example losses itself so it can
weight them (importance sampling), and keeps the first pass's outputs so the
trainer can log step accuracy without another forward.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


class BatchClosure:
    """forward + backward of ``loss_fn(model(x), y)`` on one batch; returns the loss.

    ``loss_fn`` is a mean-reduction loss module (``nn.CrossEntropyLoss()``,
    ``nn.MSELoss()``, …). The loss is ``mean_i(weights_i · ℓ_i)`` with ℓ_i the
    per-example loss, so importance weights 1/(n q_i) keep the gradient unbiased.
    The first call's outputs and per-example losses are kept, detached, as
    ``first_outputs`` and ``first_losses``. Per-example losses keep the model's
    precision (float64 stays float64); half-precision ones are reduced in float32.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: nn.Module,
        x: Tensor,
        y: Tensor,
        weights: Tensor | None = None,
    ) -> None:
        if not hasattr(loss_fn, "reduction"):
            raise ValueError(
                f"loss_fn must be a torch loss module with a `reduction` attribute, got {loss_fn!r}"
            )
        if weights is not None and weights.shape[0] != x.shape[0]:
            raise ValueError(f"weights has {weights.shape[0]} entries for a batch of {x.shape[0]}")
        self.model, self.loss_fn, self.x, self.y, self.weights = model, loss_fn, x, y, weights
        self._per_example_fn = copy.copy(loss_fn)
        self._per_example_fn.reduction = "none"  # type: ignore[assignment]
        self.first_outputs: Tensor | None = None
        self.first_losses: Tensor | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __call__(self) -> Tensor:
        """Forward and backward on the whole batch; the (weighted) mean loss, detached."""
        outputs, losses = self._forward(self.x, self.y)
        if self.first_outputs is None:
            self.first_outputs, self.first_losses = outputs.detach(), losses.detach()
        loss = self._reduce(losses, self.weights)
        loss.backward()
        return loss.detach()

    @torch.no_grad()
    def per_example_losses(self) -> Tensor:
        """ℓ_i for every example at the current weights, without a graph (ESAM's ranking)."""
        return self._forward(self.x, self.y)[1]

    def on_subset(self, index: Tensor) -> Tensor:
        """Forward and backward on the examples ``index`` only; their (weighted) mean loss."""
        weights = None if self.weights is None else self.weights[index]
        _, losses = self._forward(self.x[index], self.y[index])
        loss = self._reduce(losses, weights)
        loss.backward()
        return loss.detach()

    def split(self, m: int) -> list[BatchClosure]:
        """Closures over consecutive chunks of ``m`` examples (the last may be smaller)."""
        starts = range(0, len(self), m)
        return [self._slice(slice(s, s + m)) for s in starts]

    def _slice(self, part: slice) -> BatchClosure:
        weights = None if self.weights is None else self.weights[part]
        return BatchClosure(self.model, self.loss_fn, self.x[part], self.y[part], weights)

    def _forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        outputs = self.model(x)
        losses = self._per_example_fn(outputs, y)
        # MSE-like losses are elementwise: average the non-batch dims per example.
        losses = losses.reshape(losses.shape[0], -1).mean(dim=1) if losses.dim() > 1 else losses
        # Half-precision losses (autocast) are reduced in float32; float32/float64 stay.
        return outputs, losses.to(torch.promote_types(losses.dtype, torch.float32))

    @staticmethod
    def _reduce(losses: Tensor, weights: Tensor | None) -> Tensor:
        return losses.mean() if weights is None else (losses * weights.to(losses.dtype)).mean()
