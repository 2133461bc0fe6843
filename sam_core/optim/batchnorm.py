"""Keep BatchNorm running statistics to one update per optimizer step.

SAM-type rules run the model forward more than once per step; without care
each forward in train mode moves the running mean and variance (and
``num_batches_tracked``) again. The engine snapshots them after the first pass
and copies them back after the extra passes (docs/optimizers.md; the momentum-0
trick of davda54/sam still advances ``num_batches_tracked``, so we copy).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


class BatchNormSnapshot:
    """Running statistics of every tracking BatchNorm layer of a model, saved and put back."""

    def __init__(self, model: nn.Module) -> None:
        self.buffers: list[Tensor] = [
            buffer
            for module in model.modules()
            if isinstance(module, _BatchNorm) and module.track_running_stats
            for buffer in (module.running_mean, module.running_var, module.num_batches_tracked)
            if buffer is not None
        ]
        self._copies: list[Tensor] | None = None

    def save(self) -> None:
        if not self.buffers:
            return
        if self._copies is None:  # allocated once, reused every step
            self._copies = [torch.empty_like(b) for b in self.buffers]
        torch._foreach_copy_(self._copies, self.buffers)

    def restore(self) -> None:
        if self._copies is not None:
            torch._foreach_copy_(self.buffers, self._copies)
