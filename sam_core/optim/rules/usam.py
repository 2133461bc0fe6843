"""USAM (Andriushchenko & Flammarion, ICML 2022): unnormalized ascent, ε = ρ g."""

from __future__ import annotations

from torch import Tensor

from sam_core.optim.directions import scale_
from sam_core.optim.engine import SharpnessAware


class Usam(SharpnessAware):
    name = "usam"

    def perturbation(
        self, params: list[Tensor], grads: list[Tensor], rho: float, scratch: list[Tensor]
    ) -> None:
        scale_(grads, rho)
