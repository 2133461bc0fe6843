"""SAM (Foret et al., ICLR 2021; github.com/google-research/sam): ε = ρ g/‖g‖."""

from __future__ import annotations

from torch import Tensor

from sam_core.optim.directions import normalize_
from sam_core.optim.engine import SharpnessAware


class Sam(SharpnessAware):
    name = "sam"

    def perturbation(
        self, params: list[Tensor], grads: list[Tensor], rho: float, scratch: list[Tensor]
    ) -> None:
        normalize_(grads, rho)
