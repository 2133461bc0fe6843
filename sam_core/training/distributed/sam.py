"""SAM under data parallelism: one optimizer step of a rule on each rank's shard.

Two semantics, chosen by `distributed.sam` (docs/optimizers.md, "SAM across ranks"):

- ``global``: every backward pass runs through DDP, which all-reduces (averages) the
  gradient, so pass 1 gives each rank the gradient g of the global batch and every
  rank forms the same ε; pass 2's g_p is all-reduced too. A step equals the rule on
  the global batch in one process (Foret et al. 2021, eq. 2-3, with B the global batch).
- ``local``: both passes run under DDP's ``no_sync``: each rank forms ε from its own
  gradient and its own ĝ; ĝ is then averaged over ranks in one all-reduce before the
  base optimizer steps. With B_r the rank's shard this is m-SAM with m = |B_r|
  (Foret et al. 2021 §4; Andriushchenko & Flammarion 2022, §2 and App. C).
  Rules with state (VaSSO's d, F-SAM's m, LookSAM's g_v) update it from the rank's
  own gradient; after the step the state is averaged over ranks so that every rank
  holds the same state (an EMA of the rank average of the local gradients).

The collectives are torch.distributed's; nothing here runs without an initialised
process group.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel

from sam_core.optim import BatchClosure, SharpnessAware

Semantics = Literal["global", "local"]


def all_reduce_mean_(tensors: list[Tensor]) -> None:
    """Average `tensors` (any shapes, one dtype per call group) over all ranks, in place.

    The tensors are flattened into one buffer per dtype, so a call costs one
    all-reduce per dtype (`sum` then divide: gloo has no `avg`).
    """
    world = dist.get_world_size()
    by_dtype: dict[torch.dtype, list[Tensor]] = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t)
    for group in by_dtype.values():
        flat = torch.cat([t.reshape(-1) for t in group])
        dist.all_reduce(flat)
        flat.div_(world)
        torch._foreach_copy_(
            group,
            [
                c.view_as(t)
                for c, t in zip(flat.split([t.numel() for t in group]), group, strict=True)
            ],
        )


class DataParallelSam:
    """A model wrapped in DDP and a rule made to step under `semantics` across ranks.

    `model` is the plain module (every rank built it from the same seed; DDP also
    broadcasts rank 0's weights), `optimizer` a rule of the registry over it.
    `device_ids` is ``[local_rank]`` on CUDA, None on the CPU. Raises RuntimeError
    if no process group is initialised.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: SharpnessAware,
        semantics: Semantics,
        *,
        device_ids: list[int] | None = None,
        count_bytes: bool = False,
    ) -> None:
        if not dist.is_initialized():
            raise RuntimeError("data-parallel SAM needs torch.distributed initialised first")
        if semantics not in ("global", "local"):
            raise ValueError(f"distributed.sam must be 'global' or 'local', got {semantics!r}")
        self.model, self.optimizer, self.semantics = model, optimizer, semantics
        self.ddp = DistributedDataParallel(model, device_ids=device_ids)
        self.world = dist.get_world_size()
        self.rank = dist.get_rank()
        #: This rank's examples over the mean per-rank count; 1 unless the batch is uneven.
        self.share = 1.0
        self.bytes_reduced = 0
        if semantics == "local":
            optimizer.reduce_gradients = self._average_updates
        if count_bytes:  # DDP's own all-reduces, counted by a pass-through comm hook
            # (a lambda: DDP checks a hook's annotations, and postponed ones are strings)
            self.ddp.register_comm_hook(None, lambda _, bucket: self._counting_hook(bucket))

    def _counting_hook(self, bucket: Any) -> Any:
        buffer = bucket.buffer()
        self.bytes_reduced += buffer.numel() * buffer.element_size()
        group = dist.group.WORLD
        assert group is not None  # the process group exists (checked in __init__)
        return default_hooks.allreduce_hook(group, bucket)

    def closure(
        self, loss_fn: nn.Module, x: Tensor, y: Tensor, weights: Tensor | None, global_n: int
    ) -> BatchClosure:
        """The closure over this rank's shard (x, y) of a global batch of `global_n`.

        ``global``: the loss is weighted by world·n_r/n so DDP's average of the
        ranks' gradients is the gradient of the global batch's mean loss even when
        the shards differ in size. ``local`` weighs each rank's ĝ the same way
        before it is averaged, since ε must come from the shard's own mean loss.
        """
        self.share = self.world * len(x) / global_n
        if self.semantics == "global" and self.share != 1.0:
            scale = torch.full((len(x),), self.share, dtype=x.dtype, device=x.device)
            weights = scale if weights is None else weights * scale
        return BatchClosure(self.ddp, loss_fn, x, y, weights)

    def loss_term(self, loss: float) -> float:
        """This rank's part of the global batch's mean loss, times the world size
        (so the mean over ranks is that loss): the closure already weighed ``global``'s."""
        return loss if self.semantics == "global" else loss * self.share

    def step_context(self) -> AbstractContextManager[Any]:
        """DDP's `no_sync` for ``local`` (no all-reduce in backward), nothing for ``global``."""
        return self.ddp.no_sync() if self.semantics == "local" else nullcontext()

    def step(self, closure: BatchClosure) -> Tensor:
        """One step of the rule; returns this rank's first-pass loss."""
        with self.step_context():
            loss = self.optimizer.step(closure)
        self.after_step()
        return loss

    def after_step(self) -> None:
        """``local``: average the rule's persistent state so every rank holds the same."""
        if self.semantics != "local":
            return
        state = [
            t for name in self.optimizer.persistent for t in self.optimizer.buffers.get(name, [])
        ]
        if state:
            self._count(state)
            all_reduce_mean_(state)

    def _average_updates(self, params: list[Tensor]) -> None:
        grads = [p.grad for p in params if p.grad is not None]
        if self.share != 1.0:
            torch._foreach_mul_(grads, self.share)
        self._count(grads)
        all_reduce_mean_(grads)

    def _count(self, tensors: list[Tensor]) -> None:
        self.bytes_reduced += sum(t.numel() * t.element_size() for t in tensors)
