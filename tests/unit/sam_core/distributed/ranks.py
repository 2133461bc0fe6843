"""What each rank runs in the data-parallel tests (importable: ranks are spawned)."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from sam_core.optim import BatchClosure, create_optimizer
from sam_core.spec import JobSpec
from sam_core.training.distributed import DataParallelSam, DistributedTrainer, init_from_env
from sam_core.training.events import Checkpoint, Event

IN, HIDDEN, OUT = 5, 8, 3
BASE = {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4}


def tiny_problem(
    steps: int, batch: int, batchnorm: bool = False
) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A float64 MLP with a normalization layer after the hidden layer (BatchNorm if
    asked, else LayerNorm: per example, so global SAM can equal one process) and
    `steps` global batches of `batch` examples."""
    torch.manual_seed(0)
    norm = nn.BatchNorm1d(HIDDEN) if batchnorm else nn.LayerNorm(HIDDEN)
    model = nn.Sequential(nn.Linear(IN, HIDDEN), norm, nn.Tanh(), nn.Linear(HIDDEN, OUT)).double()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(steps, batch, IN, generator=generator, dtype=torch.float64)
    y = torch.randint(0, OUT, (steps, batch), generator=generator)
    return model, x, y


def single_process(
    rule: str, params: dict[str, Any], steps: int, batch: int, batchnorm: bool = False
) -> dict[str, Any]:
    """The rule in one process on the global batches: the reference."""
    model, x, y = tiny_problem(steps, batch, batchnorm)
    optimizer = create_optimizer(rule, model, base=BASE, seed=7, **params)
    for s in range(steps):
        optimizer.step(BatchClosure(model, nn.CrossEntropyLoss(), x[s], y[s]))
    return _result(model, optimizer)


def data_parallel(
    semantics: str,
    runs: list[tuple[str, dict[str, Any]]],
    steps: int,
    batch: int,
    batchnorm: bool = False,
) -> dict[str, Any]:
    """Each (rule, params) of `runs` over this rank's shards; the weights and state."""
    init_from_env(30, device="cpu")
    torch.set_num_threads(1)
    rank, world = dist.get_rank(), dist.get_world_size()
    out = {}
    for rule, params in runs:
        model, x, y = tiny_problem(steps, batch, batchnorm)
        optimizer = create_optimizer(rule, model, base=BASE, seed=7, **params)
        parallel = DataParallelSam(model, optimizer, semantics)  # type: ignore[arg-type]
        for s in range(steps):
            part = torch.tensor_split(torch.arange(batch), world)[rank]
            closure = parallel.closure(nn.CrossEntropyLoss(), x[s][part], y[s][part], None, batch)
            parallel.step(closure)
        out[rule] = _result(model, optimizer)
    dist.destroy_process_group()
    return out


def _result(model: nn.Module, optimizer: Any) -> dict[str, Any]:
    return {
        "weights": [p.detach().clone() for p in model.parameters()],
        "buffers": [b.detach().clone() for b in model.buffers()],
        "rule_state": {k: [t.clone() for t in v] for k, v in optimizer.buffers.items()},
        "persistent": list(optimizer.persistent),
    }


class StopAfter:
    """A `should_stop` that asks to stop once `calls` steps have been taken."""

    def __init__(self, calls: int | None) -> None:
        self.calls, self.seen = calls, 0

    def __call__(self) -> bool:
        self.seen += 1
        return self.calls is not None and self.seen > self.calls


def run_job(spec_json: dict[str, Any], stop_after: int | None, resume: Any) -> dict[str, Any]:
    """A whole job on this rank: the trainer's final weights and rank 0's last checkpoint.

    `resume` is the path of a saved checkpoint, read by each rank as the worker does
    (a state passed as an argument would travel in shared memory, and the ranks'
    optimizers would then step one momentum buffer twice)."""
    spec = JobSpec.model_validate(spec_json)
    init_from_env(spec.distributed.timeout_s, device="cpu")
    torch.set_num_threads(1)
    events: list[Event] = []
    trainer = DistributedTrainer(spec, events.append, StopAfter(stop_after))
    if resume is not None:
        trainer.load_state(torch.load(resume, weights_only=True))
    finished = trainer.run()
    checkpoints = [e.state for e in events if isinstance(e, Checkpoint)]
    dist.destroy_process_group()
    return {
        "status": finished.status,
        "step": finished.step,
        "weights": [p.detach().clone() for p in trainer.model.parameters()],
        "checkpoint": checkpoints[-1] if checkpoints else None,
        "events": len(events),
    }


def lost_rank(rank: int, world: int, port: int, how: str, timeout_s: float) -> None:
    """SAM steps until rank 1 is lost at step 3: killed (SIGKILL) or stalled (asleep).
    `port` 0: the environment is already set (by `launch`)."""
    if port:
        os.environ.update(
            RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
        )
    init_from_env(timeout_s, device="cpu")
    torch.set_num_threads(1)
    model, x, y = tiny_problem(1000, 4 * world)
    optimizer = create_optimizer("sam", model, base=BASE, rho=0.05)
    parallel = DataParallelSam(model, optimizer, "global")
    for s in range(1000):
        if rank == 1 and s == 3:
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(3600)
        part = torch.tensor_split(torch.arange(4 * world), world)[rank]
        parallel.step(
            parallel.closure(nn.CrossEntropyLoss(), x[s][part], y[s][part], None, 4 * world)
        )


def lost_rank_launched(how: str, timeout_s: float) -> None:
    """`lost_rank` under `launch`, which sets the rank's environment itself."""
    lost_rank(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), 0, how, timeout_s)


def one_node(endpoint: str, run_id: str, steps: int, batch: int) -> dict[str, Any]:
    """One "machine" of a two-node job: its launcher, one rank, the c10d rendezvous."""
    from sam_core.training.distributed import launch

    results = launch(
        data_parallel,
        ("global", [("sam", {"rho": 0.05})], steps, batch),
        1,
        nnodes=2,
        rdzv_endpoint=endpoint,
        run_id=run_id,
        join_timeout_s=120,
    )
    return {"node_ranks": sorted(results), "results": results}
