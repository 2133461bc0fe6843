"""GCSAM (Hassan et al., arXiv 2501.11584, 2025; github.com/Mohamed-Hassan22/GCSAM).

g_c centralizes g per tensor of rank > 1; ε = ρ g_c/‖g‖, the norm taken of the
raw g before centralizing, as the authors' code does (so ‖ε‖ ≤ ρ). The descent
gradient is not centralized.
"""

from __future__ import annotations

from torch import Tensor

from sam_core.optim.directions import centralize_, global_norm, normalize_
from sam_core.optim.engine import SharpnessAware


class Gcsam(SharpnessAware):
    name = "gcsam"

    def perturbation(
        self, params: list[Tensor], grads: list[Tensor], rho: float, scratch: list[Tensor]
    ) -> None:
        raw_norm = global_norm(grads)
        centralize_(grads)
        normalize_(grads, rho, raw_norm)
