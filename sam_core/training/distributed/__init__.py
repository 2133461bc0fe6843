"""Data-parallel training on torch.distributed (DDP) with SAM-aware semantics.

`launch` starts ranks as torchrun does; in each, `init_from_env` joins the process
group and `DistributedTrainer` runs the spec's job on the rank's shard of every
global batch. `DataParallelSam` is the step itself (``global`` or ``local`` SAM).
"""

from sam_core.training.distributed.launch import free_port, init_from_env, launch
from sam_core.training.distributed.sam import DataParallelSam, all_reduce_mean_
from sam_core.training.distributed.trainer import DistributedTrainer, rank_seed

__all__ = [
    "DataParallelSam",
    "DistributedTrainer",
    "all_reduce_mean_",
    "free_port",
    "init_from_env",
    "launch",
    "rank_seed",
]
