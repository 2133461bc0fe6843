"""m-SAM (Foret et al. 2021 §4; Andriushchenko & Flammarion 2022, tml-epfl/understanding-sam).

The batch splits into chunks of m examples; chunk i takes its own
ε_i = ρ g_i/‖g_i‖ and returns ∇L_i(w + ε_i); ĝ is their mean, weighted by
chunk size (the plain mean when m divides the batch). BatchNorm running
statistics keep the first chunk's pass-1 update only, as data-parallel SAM
with broadcast buffers keeps rank 0's. Needs a ``BatchClosure``.
"""

from __future__ import annotations

from typing import Any

import torch

from sam_core.optim.closure import BatchClosure
from sam_core.optim.engine import Closure, SharpnessAware
from sam_core.spec.optimizers import MsamParams


class Msam(SharpnessAware):
    name = "msam"
    hp: MsamParams
    manual_two_pass = False

    def sharpness_step(self, closure: Closure, rho: float) -> Any:
        if not isinstance(closure, BatchClosure):
            raise TypeError(
                "msam runs its passes on chunks of m examples, so it needs a "
                "sam_core.optim.BatchClosure, not a plain callable"
            )
        chunks = closure.split(self.hp.m)
        total = 0.0
        for i, chunk in enumerate(chunks):
            share = len(chunk) / len(closure)
            total = total + share * self.run_pass(chunk)
            with self.math():
                params = [p for p in self.params if p.grad is not None]
                acc = self.buffer("acc", params)  # allocated once, not saved
                if i == 0:
                    self.save_batchnorm()
                    torch._foreach_zero_(acc)
                self.perturb(params, rho)
                self.zero_grads()
            self.run_pass(chunk, zero=False)
            with self.math():
                self.restore(params)
                torch._foreach_add_(acc, self.grads_of(params), alpha=share)
        with self.math():
            self.restore_batchnorm()
            torch._foreach_copy_(self.grads_of(params), acc)
            self.apply_base_step(grad_evals=2.0)
        closure.first_outputs = torch.cat([c.first_outputs for c in chunks])  # type: ignore[misc]
        closure.first_losses = torch.cat([c.first_losses for c in chunks])  # type: ignore[misc]
        return total
