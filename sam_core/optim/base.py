"""The base optimizer that applies ĝ: torch's own SGD or AdamW."""

from __future__ import annotations

from typing import Any

import torch
from torch.optim import Optimizer

from sam_core.spec.optimizers import BaseOptimizerParams


def make_base_optimizer(params: list[Any], base: BaseOptimizerParams) -> Optimizer:
    """torch.optim.SGD (momentum, Nesterov, weight decay) or torch.optim.AdamW."""
    if base.name == "sgd":
        return torch.optim.SGD(
            params,
            lr=base.lr,
            momentum=base.momentum,
            nesterov=base.nesterov,
            weight_decay=base.weight_decay,
        )
    return torch.optim.AdamW(
        params, lr=base.lr, betas=base.betas, eps=base.eps, weight_decay=base.weight_decay
    )
