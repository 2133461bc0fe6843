"""Start the ranks of a data-parallel job the way `torchrun` does, and set each one up.

`launch` runs `entrypoint(*args)` on `nprocs` local ranks through
`torch.distributed.launcher.api.elastic_launch` (torchrun's own machinery): a c10d
rendezvous at `rdzv_endpoint` (host:port; the first node hosts it), RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT set in each rank's environment, and, when a
rank fails, the others stopped and `ChildFailedError` raised (no restarts: the job
fails or is resumed from its checkpoint by the worker). Two machines (or two
launchers on one machine) with `nnodes=2` and the same `rdzv_endpoint` and `run_id`
form one job.

In each rank, `init_from_env` joins the process group: NCCL on CUDA, gloo on the
CPU, with `timeout_s` as the limit of every collective, so a lost rank makes the
others fail instead of waiting for ever.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.launcher.api import LaunchConfig, elastic_launch


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` right now (for a rendezvous on one machine)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def init_from_env(timeout_s: float, *, device: str = "auto") -> str:
    """Join the process group described by the environment (env:// rendezvous).

    `device` "cpu" forces gloo; otherwise NCCL when CUDA is available. Returns the
    backend. Raises ValueError if RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT are unset.
    """
    missing = [
        k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ
    ]
    if missing:
        raise ValueError(f"not launched as a rank: {', '.join(missing)} unset")
    use_cuda = device != "cpu" and torch.cuda.is_available()
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return backend


def launch(
    entrypoint: Callable[..., Any],
    args: tuple[Any, ...],
    nprocs: int,
    *,
    nnodes: int = 1,
    rdzv_endpoint: str | None = None,
    run_id: str | None = None,
    join_timeout_s: float = 600.0,
    log_dir: str | None = None,
) -> dict[int, Any]:
    """Run `entrypoint(*args)` on `nprocs` ranks of this node; each rank's return value.

    `entrypoint` must be importable by name (ranks are spawned). `rdzv_endpoint`
    defaults to a free port on 127.0.0.1 (one node); for several nodes pass the
    first node's `host:port` and one `run_id` to every node's launcher. Raises
    `torch.distributed.elastic.multiprocessing.errors.ChildFailedError` when a rank
    fails (the others are stopped first).
    """
    endpoint = rdzv_endpoint or f"127.0.0.1:{free_port()}"
    config = LaunchConfig(
        min_nodes=nnodes,
        max_nodes=nnodes,
        nproc_per_node=nprocs,
        run_id=run_id or uuid.uuid4().hex,
        rdzv_backend="c10d",
        rdzv_endpoint=endpoint,
        rdzv_configs={"join_timeout": join_timeout_s},
        max_restarts=0,
        monitor_interval=0.2,
        start_method="spawn",
        logs_specs=None if log_dir is None else _logs_specs(log_dir),
    )
    return elastic_launch(config, entrypoint)(*args)


def _logs_specs(log_dir: str) -> Any:
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs

    return DefaultLogsSpecs(log_dir=log_dir)
