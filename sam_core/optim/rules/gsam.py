"""GSAM (Zhuang et al., ICLR 2022; big_vision `proj/gsam`, github.com/juntang-zhuang/GSAM).

SAM's ε and g_p = ∇L(w + ε); the clean gradient g splits into its part along
g_p and the rest g_⊥ = g − (⟨g, g_p⟩/‖g_p‖²) g_p; ĝ = g_p − α g_⊥ descends
the perturbed loss while ascending the surrogate gap (the paper's Alg. 1).
The dot products are global, over every tensor.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sam_core.optim.directions import NORM_EPS, global_dot, global_norm, normalize_, scale_
from sam_core.optim.engine import SharpnessAware
from sam_core.spec.optimizers import GsamParams


class Gsam(SharpnessAware):
    name = "gsam"
    hp: GsamParams

    def remember_gradient(self, params: list[Tensor], grads: list[Tensor]) -> None:
        torch._foreach_copy_(self.buffer("g", params), grads)  # allocated once, not saved

    def perturbation(
        self, params: list[Tensor], grads: list[Tensor], rho: float, scratch: list[Tensor]
    ) -> None:
        normalize_(grads, rho)

    def descent(self, params: list[Tensor], grads: list[Tensor]) -> None:
        g, alpha = self.buffer("g", params), self.hp.alpha
        along = global_dot(g, grads) / (global_norm(grads) + NORM_EPS) ** 2
        # g_p − α (g − c g_p) = (1 + α c) g_p − α g
        scale_(grads, 1.0 + alpha * along)
        torch._foreach_add_(grads, g, alpha=-alpha)
