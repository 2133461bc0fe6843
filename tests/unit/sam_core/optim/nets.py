"""Small models and batches the optimizer tests share."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from sam_core.optim import BatchClosure


class TinyNet(nn.Module):
    """Linear → LayerNorm → tanh → Linear: every kind of tensor, no coupling across examples."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.norm, self.fc2 = nn.Linear(3, 5), nn.LayerNorm(5), nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.tanh(self.norm(self.fc1(x))))


def tiny_loss(w: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """TinyNet's mean cross-entropy written as a function of its six tensors."""
    h = F.layer_norm(F.linear(x, w[0], w[1]), (5,), w[2], w[3])
    return F.cross_entropy(F.linear(torch.tanh(h), w[4], w[5]), y)


class BnNet(nn.Module):
    """A conv net with BatchNorm, for the running-statistics tests."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def batches(count: int, n: int, shape: tuple[int, ...], seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, *shape, generator=g), torch.randint(0, 3, (n,), generator=g))
            for _ in range(count)]  # fmt: skip


def closure(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> BatchClosure:
    return BatchClosure(model, nn.CrossEntropyLoss(), x, y)


def clone(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model)


#: Parameters that make every rule show its own behaviour within a few steps.
RULE_KWARGS: dict[str, dict] = {"msam": {"m": 4}, "looksam": {"k": 2}}
