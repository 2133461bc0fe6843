"""The training loop on one rank of a data-parallel job.

`DistributedTrainer` is the single-device `Trainer` with four changes:

- every rank draws the same global batch (one sampler, one seed) and trains on its
  own contiguous shard of it, so the sampler's state is the same on every rank;
- the step runs through `DataParallelSam` (`distributed.sam`: global or local);
- rank 0 alone emits events and runs evaluations and sharpness measures (on the plain
  module: no collective), and writes checkpoints holding every rank's random state;
- a stop request seen by rank 0 and a non-finite loss on any rank are agreed on by an
  all-reduce, so all ranks leave the loop at the same step.

Augmentation and dropout draw from per-rank streams (rank 0 keeps the single-device
streams), saved per rank in the checkpoint so a resume on as many ranks is exact.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from sam_core.optim import BatchClosure
from sam_core.spec import JobSpec
from sam_core.training.distributed.sam import DataParallelSam
from sam_core.training.events import Event
from sam_core.training.loop import Trainer
from sam_core.training.rng import (
    AUGMENT_STREAM,
    global_rng_state,
    set_global_rng_state,
    stream_seed,
)

#: Stream of the global generators of ranks > 0 (dropout, rules drawing from torch).
RANK_STREAM = 5


def rank_seed(seed: int, stream: int, rank: int) -> int:
    """The seed of `stream` on `rank`: rank 0 keeps the single-device seed."""
    base = stream_seed(seed, stream)
    return base if rank == 0 else (base << 12) + rank


class DistributedTrainer(Trainer):
    """One rank's `Trainer`; needs an initialised process group (`launch.init_from_env`)."""

    def __init__(
        self,
        spec: JobSpec,
        on_event: Callable[[Event], None],
        should_stop: Callable[[], bool],
        *,
        data_dir: str | Path | None = None,
    ) -> None:
        if not dist.is_initialized():
            raise RuntimeError("DistributedTrainer needs torch.distributed initialised first")
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        if self.world != spec.resources.world_size:
            raise ValueError(
                f"the job asks for {spec.resources.world_size} ranks (resources) but "
                f"{self.world} were launched"
            )
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if spec.training.device != "cpu" and torch.cuda.is_available():
            torch.cuda.set_device(local_rank)  # "cuda" now means this rank's device
        super().__init__(spec, on_event, should_stop, data_dir=data_dir)
        self._stop_requested = should_stop
        self.should_stop = self._agreed_stop
        if spec.distributed.batchnorm == "sync":
            if self.device.type != "cuda":
                raise ValueError("distributed.batchnorm 'sync' needs CUDA devices (SyncBatchNorm)")
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        seed = spec.training.seed
        if self.rank > 0:
            torch.manual_seed(rank_seed(seed, RANK_STREAM, self.rank))
            self.augment_generator.manual_seed(rank_seed(seed, AUGMENT_STREAM, self.rank))
        device_ids = [local_rank] if self.device.type == "cuda" else None
        self.parallel = DataParallelSam(
            self.model, self.optimizer, spec.distributed.sam, device_ids=device_ids
        )
        self._rank_states: list[dict[str, Any]] = []
        n, batch = len(self.task.x_train), spec.data.batch_size
        last = n % batch
        if spec.effective_sampling in ("uniform", "importance") and 0 < last < self.world:
            raise ValueError(
                f"the last batch of each epoch has {last} examples, fewer than the "
                f"{self.world} ranks; choose data.batch_size so that {n} % batch_size is 0 "
                f"or at least {self.world}"
            )

    # --- the step ----------------------------------------------------------------

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        x, y, weights = self.sampler.next_batch(self.model, self.step)
        self._global_n = len(x)
        part = torch.tensor_split(torch.arange(len(x), device=x.device), self.world)[self.rank]
        x, y = x[part], y[part]
        weights = None if weights is None else weights[part]
        if self.task.augment is not None:
            x = self.task.augment(x, self.augment_generator)
        return x, y, weights

    def make_closure(
        self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None
    ) -> BatchClosure:
        return self.parallel.closure(self.loss_fn, x, y, weights, self._global_n)

    def step_context(self) -> AbstractContextManager[Any]:
        return self.parallel.step_context()

    def after_optimizer_step(self, loss: float) -> float:
        """Average the rule's state (``local``) and the loss over ranks (every rank then
        sees the same loss, so a divergence stops them all at once)."""
        self.parallel.after_step()
        value = torch.tensor(
            [self.parallel.loss_term(loss)], dtype=torch.float64, device=self.device
        )
        dist.all_reduce(value)
        return float(value) / self.world

    def _agreed_stop(self) -> bool:
        asked = float(self.rank == 0 and self._stop_requested())
        flag = torch.tensor([asked], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    # --- rank 0 reports ----------------------------------------------------------

    def emit(self, event: Event) -> None:
        if self.rank == 0:
            self.on_event(event)

    def run_evaluation(
        self, evaluated: Any = None, *, evaluate: bool = True, measure: bool = True
    ) -> None:
        if self.rank == 0:  # the plain module: no collective, the others go on to the next step
            super().run_evaluation(evaluated, evaluate=evaluate, measure=measure)

    # --- checkpoints -------------------------------------------------------------

    def emit_checkpoint(self, global_rng: dict[str, Any] | None = None) -> None:
        """Gather every rank's random state (a collective: all ranks call this), then rank 0
        emits the checkpoint."""
        own = {"global": global_rng_state(), "augment": self.augment_generator.get_state()}
        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, own)
        self._rank_states = gathered
        if self.rank == 0:
            super().emit_checkpoint(global_rng)

    def state(self, global_rng: dict[str, Any] | None = None) -> dict[str, Any]:
        out = super().state(global_rng)
        out["ranks"] = list(self._rank_states)
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        """Load a checkpoint of a run on as many ranks; each rank takes its own RNG state.

        Raises ValueError if it was taken on another number of ranks (the per-rank
        streams would not line up) or without per-rank states.
        """
        ranks = state.get("ranks")
        if not isinstance(ranks, list) or len(ranks) != self.world:
            count = len(ranks) if isinstance(ranks, list) else 1
            raise ValueError(
                f"checkpoint was taken on {count} rank(s); this run has {self.world}: "
                "resume it with the resources it was started with"
            )
        super().load_state(state)
        set_global_rng_state(ranks[self.rank]["global"])
        self.augment_generator.set_state(ranks[self.rank]["augment"])
