"""VaSSO (Li & Giannakis, NeurIPS 2023; github.com/BingcongLi/VaSSO).

d_t = (1 − θ) d_{t−1} + θ g_t with d_0 = g_0, ε = ρ d_t/‖d_t‖: the EMA lowers
the variance of the perturbation. d is kept in the optimizer state.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sam_core.optim.directions import normalize_
from sam_core.optim.engine import SharpnessAware
from sam_core.spec.optimizers import VassoParams


class Vasso(SharpnessAware):
    name = "vasso"
    hp: VassoParams
    persistent = ("d",)

    def perturbation(
        self, params: list[Tensor], grads: list[Tensor], rho: float, scratch: list[Tensor]
    ) -> None:
        first = "d" not in self.buffers
        d = self.buffer("d", params)
        if first:
            torch._foreach_copy_(d, grads)
        else:
            torch._foreach_lerp_(d, grads, self.hp.theta)  # d + θ(g − d)
        torch._foreach_copy_(grads, d)
        normalize_(grads, rho)
