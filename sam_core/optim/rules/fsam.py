"""Friendly SAM (Li et al., CVPR 2024; github.com/nblt/F-SAM).

m_t = β m_{t−1} + (1 − β) g_t estimates the full-batch gradient; the
perturbation follows what is left, d = g_t − σ m_t, ε = ρ d/‖d‖. The first
step sets m_0 = g_0 and perturbs along g_0 (plain SAM), as the authors' code
does; the formula would give d = 0 there when σ = 1.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sam_core.optim.directions import normalize_
from sam_core.optim.engine import SharpnessAware
from sam_core.spec.optimizers import FsamParams


class Fsam(SharpnessAware):
    name = "fsam"
    hp: FsamParams
    persistent = ("m",)

    def perturbation(
        self, params: list[Tensor], grads: list[Tensor], rho: float, scratch: list[Tensor]
    ) -> None:
        first = "m" not in self.buffers
        m = self.buffer("m", params)
        if first:
            torch._foreach_copy_(m, grads)
        else:
            torch._foreach_lerp_(m, grads, 1.0 - self.hp.beta)  # β m + (1 − β) g
            torch._foreach_add_(grads, m, alpha=-self.hp.sigma)
        normalize_(grads, rho)
