"""The SAM family as torch optimizers: one engine, one small file per rule.

``create_optimizer(name, params, base=..., max_grad_norm=None, **rule_params)``
builds any rule of docs/optimizers.md; ``BatchClosure`` is the closure
the trainer passes to ``step``; ``describe_optimizers()`` lists the rules.
"""

from sam_core.optim.closure import BatchClosure
from sam_core.optim.engine import SharpnessAware
from sam_core.optim.registry import (
    OPTIMIZERS,
    create_optimizer,
    describe_optimizers,
    list_optimizers,
)

__all__ = [
    "OPTIMIZERS",
    "BatchClosure",
    "SharpnessAware",
    "create_optimizer",
    "describe_optimizers",
    "list_optimizers",
]
