"""SAM-ON (Mueller et al., NeurIPS 2023; github.com/mueller-mp/SAM-ON).

SAM or ASAM (``base_rule``) on the affine parameters of normalization layers
only: they alone are perturbed and enter the norm; every parameter is then
updated with its gradient at the perturbed point. The layers are found by
module type, not by name as the authors' code does, so the rule needs the model.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.modules.batchnorm import _NormBase

from sam_core.optim.directions import normalize_
from sam_core.optim.engine import SharpnessAware
from sam_core.optim.rules.asam import adaptive_direction_
from sam_core.spec.optimizers import SamOnParams

NORM_LAYERS: tuple[type[nn.Module], ...] = (_NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)


class SamOn(SharpnessAware):
    name = "sam_on"
    hp: SamOnParams

    def setup(self) -> None:
        model = self.require_model("it perturbs normalization layers found by module type")
        self.norm_params = {
            p
            for module in model.modules()
            if isinstance(module, NORM_LAYERS)
            for p in module.parameters(recurse=False)
        }
        if not self.norm_params:
            raise ValueError(
                f"sam_on: the model {type(model).__name__} has no normalization layer with "
                f"affine parameters (looked for {', '.join(t.__name__ for t in NORM_LAYERS)})"
            )

    def select(self, params: list[Tensor]) -> list[Tensor]:
        return [p for p in params if p in self.norm_params]

    def perturbation(
        self, params: list[Tensor], grads: list[Tensor], rho: float, scratch: list[Tensor]
    ) -> None:
        if self.hp.base_rule == "asam":
            # β scaled like γ, as the authors' example runs (--normalize_bias).
            adaptive_direction_(params, grads, rho, self.hp.eta, scratch, [True] * len(params))
        else:
            normalize_(grads, rho)
