"""Random SAM (Liu, Mai, Cheng, Chen, Hsieh & You, NeurIPS 2022).

Smooth first, then ascend: δ ~ N(0, σ² I) per coordinate, g̃ = ∇L_B(w + δ),
ε = δ + ρ g̃/‖g̃‖, ĝ = ∇L_B(w + ε). Pass 1 is taken at w + δ, so the loss a
step returns is L_B(w + δ). The noise comes from the optimizer's generator,
whose state is saved with the optimizer. See docs/optimizers.md for why this
reading of the paper.
"""

from __future__ import annotations

from typing import Any

import torch

from sam_core.optim.directions import normalize_
from sam_core.optim.engine import Closure, SharpnessAware
from sam_core.spec.optimizers import RsamParams


class Rsam(SharpnessAware):
    name = "rsam"
    hp: RsamParams
    manual_two_pass = False
    uses_rng = True

    def sharpness_step(self, closure: Closure, rho: float) -> Any:
        params = self.params
        with self.math():
            torch._foreach_copy_(self.saved(params), params)
            noise = self.grads_of(params)  # the gradient memory holds δ until pass 1
            for n in noise:
                n.normal_(0.0, self.hp.sigma, generator=self.generator)
            torch._foreach_add_(params, noise)  # w + δ
        loss = self.run_pass(closure)  # g̃ at w + δ
        with self.math():
            self.save_batchnorm()
            grads = self.grads_of(params)
            if self.hp.perturb_weight_decay:
                self._add_weight_decay(params, grads)
            normalize_(grads, rho)
            torch._foreach_add_(params, grads)  # w + δ + ρ g̃/‖g̃‖
            self.zero_grads()
        self.run_pass(closure, zero=False)
        with self.math():
            self.restore_batchnorm()
            self.restore(params)
            self.apply_base_step(grad_evals=2.0)
        return loss
