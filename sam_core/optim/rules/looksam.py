"""LookSAM (Liu, Mai, Chen, Hsieh & You, CVPR 2022).

Every k-th step (the first included) is a SAM step that also keeps
g_v = g_p − (⟨g_p, g⟩/‖g‖²) g, the part of the SAM gradient orthogonal to g.
The steps between take one pass at w and reuse it:
ĝ = g + α (‖g‖/‖g_v‖) g_v. Dot products and norms are global over every
tensor, as in the paper (two public ports work per tensor).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sam_core.optim.directions import NORM_EPS, global_dot, global_norm, normalize_, scale_
from sam_core.optim.engine import Closure, SharpnessAware
from sam_core.spec.optimizers import LookSamParams


class LookSam(SharpnessAware):
    name = "looksam"
    hp: LookSamParams
    persistent = ("g_v",)
    manual_two_pass = False

    def sharpness_step(self, closure: Closure, rho: float) -> Any:
        loss = self.run_pass(closure)
        refresh = self.steps % self.hp.k == 0 or "g_v" not in self.buffers
        with self.math():
            params = [p for p in self.params if p.grad is not None]
            if not refresh:
                self._reuse(params, self.grads_of(params))
                self.apply_base_step(grad_evals=1.0)
                return loss
            self.perturb(params, rho)
            self.save_batchnorm()
            self.zero_grads()
        self.run_pass(closure, zero=False)
        with self.math():
            self.restore_batchnorm()
            self.restore(params)
            self._keep_orthogonal(params, self.grads_of(params))
            self.apply_base_step(grad_evals=2.0)
        return loss

    def remember_gradient(self, params: list[Tensor], grads: list[Tensor]) -> None:
        torch._foreach_copy_(self.buffer("g_v", params), grads)  # g, until g_p arrives

    def perturbation(
        self, params: list[Tensor], grads: list[Tensor], rho: float, scratch: list[Tensor]
    ) -> None:
        normalize_(grads, rho)

    def _keep_orthogonal(self, params: list[Tensor], grads: list[Tensor]) -> None:
        g_v = self.buffer("g_v", params)  # holds g
        along = global_dot(grads, g_v) / (global_norm(g_v) + NORM_EPS) ** 2
        scale_(g_v, -along)
        torch._foreach_add_(g_v, grads)  # g_p − c g

    def _reuse(self, params: list[Tensor], grads: list[Tensor]) -> None:
        g_v = self.buffer("g_v", params)
        factor = self.hp.alpha * global_norm(grads) / (global_norm(g_v) + NORM_EPS)
        torch._foreach_addcmul_(grads, g_v, [factor] * len(grads))
