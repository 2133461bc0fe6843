"""Unified SAM (Oikonomou & Loizou, ICLR 2025; github.com/dimitris-oik/unifiedsam).

ε = ρ (1 − λ_t + λ_t/‖g‖) g: λ = 1 is SAM, λ = 0 is USAM. λ_t is λ, or
1 − 1/t or 1/t with t counting steps from 1 (the authors' '1-1/t', '1/t').
"""

from __future__ import annotations

from torch import Tensor

from sam_core.optim.directions import NORM_EPS, global_norm, scale_
from sam_core.optim.engine import SharpnessAware
from sam_core.spec.optimizers import UnifiedSamParams


class UnifiedSam(SharpnessAware):
    name = "unified_sam"
    hp: UnifiedSamParams

    def lam(self) -> float:
        t = self.steps + 1
        schedule = self.hp.lam_schedule
        if schedule == "one_minus_inv_t":
            return 1.0 - 1.0 / t
        if schedule == "inv_t":
            return 1.0 / t
        return float(self.hp.lam)

    def perturbation(
        self, params: list[Tensor], grads: list[Tensor], rho: float, scratch: list[Tensor]
    ) -> None:
        lam = self.lam()
        # Written as ρ(1−λ) + ρλ/‖g‖ so that λ = 1 and λ = 0 give SAM's and USAM's ε bit for bit.
        scale_(grads, rho * (1.0 - lam) + (rho * lam) / (global_norm(grads) + NORM_EPS))
