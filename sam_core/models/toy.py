"""Wen, Ma & Li (2023)'s four-parameter toy, written as a model on two one-hot examples.

The paper's Fig. 1 loss is L(x) = F₁(x₁, x₂)·x₃² + F₂(x₁, x₂)·x₄² with F₁ > F₂ > 0;
its F₁, F₂ (Appendix A) were not available to us, so we choose

    F₁(a, b) = 4 + (a − 1)² + b²,     F₂(a, b) = 1 + 3(a + 1)² / (4 + (a + 1)²),

so F₁ ≥ 4 > F₂ everywhere, argmin F₁ = (1, 0) and argmin (F₁ + F₂) has a < 1
(`toy_minimizers`). On input e₁ the model outputs √F₁·x₃, on e₂ √F₂·x₄; with
targets 0 and the mean squared error, a full batch of both examples has the loss
½(F₁x₃² + F₂x₄²) (the paper's L up to the factor ½) and a batch of one example is
one of the two terms, so batch-size-1 SAM is the paper's 1-SAM with the two terms
as its two examples. Train it on the `quadratic` data set with eigenvalues [2, 2]
and `rotate: false`, whose inputs are e₁, e₂ and targets 0.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sam_core.models.registry import register


def f1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 4 + (a - 1) ** 2 + b**2


def f2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    s = (a + 1) ** 2
    return 1 + 3 * s / (4 + s) + 0 * b


def toy_minimizers() -> tuple[float, float]:
    """a* of F₁ (exactly 1) and of F₁ + F₂ (b* = 0 for both), the latter by bisection
    on d/da (F₁ + F₂) = 2(a − 1) + 24(a + 1)/(4 + (a + 1)²)², which is increasing on [−1, 1]."""

    def slope(a: float) -> float:
        return 2 * (a - 1) + 24 * (a + 1) / (4 + (a + 1) ** 2) ** 2

    lo, hi = -1.0, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if slope(mid) < 0 else (lo, mid)
    return 1.0, (lo + hi) / 2


class WenMaLiToy(nn.Module):
    """Parameters x = (x₁, x₂, x₃, x₄); input (n, 2) one-hot rows; output (n, 1)."""

    def __init__(self, start: list[float] | None) -> None:
        super().__init__()
        if start is None:
            # From torch's global generator (seeded by the trainer): (x₁, x₂) in [−2, 2]²,
            # x₃, x₄ in [−0.5, 0.5].
            start = (
                torch.rand(4) * torch.tensor([4.0, 4.0, 1.0, 1.0])
                - torch.tensor([2.0, 2.0, 0.5, 0.5])
            ).tolist()
        self.x = nn.Parameter(torch.tensor(start, dtype=torch.float32))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        a, b, c, d = self.x
        terms = torch.stack([f1(a, b).sqrt() * c, f2(a, b).sqrt() * d])
        return (inputs.flatten(1) @ terms).unsqueeze(1)


@register("wen_ma_li_toy")
def build_toy(params, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    if math.prod(input_shape) != 2 or num_outputs != 1:
        raise ValueError(
            f"wen_ma_li_toy takes the two one-hot inputs e₁, e₂ and one output, got input "
            f"shape {input_shape} and {num_outputs} outputs (use data 'quadratic' with "
            "eigenvalues [2, 2] and rotate false)"
        )
    return WenMaLiToy(params.start)
