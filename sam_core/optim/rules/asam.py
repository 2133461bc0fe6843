"""ASAM (Kwon et al., ICML 2021; github.com/SamsungLabs/ASAM).

T = |w| + η elementwise; ε = ρ T² g/‖T g‖ (the paper's eq. 7 with p = 2).
``scale_biases: false`` leaves the parameters a module registers as ``bias``
(BatchNorm's β included) at T = 1, as the authors' code scales only names
containing "weight"; finding them needs the model.
"""

from __future__ import annotations

from torch import Tensor

from sam_core.optim.directions import global_norm, normalize_, scale_, scale_by_param_abs_
from sam_core.optim.engine import SharpnessAware
from sam_core.spec.optimizers import AsamParams


def adaptive_direction_(
    params: list[Tensor],
    grads: list[Tensor],
    rho: float,
    eta: float,
    scratch: list[Tensor],
    scaled: list[bool],
) -> None:
    """grads ← ρ T² g/‖T g‖, T = |w| + η where ``scaled``, else 1."""
    idx = [i for i, s in enumerate(scaled) if s]
    s_params, s_grads, s_scratch = ([xs[i] for i in idx] for xs in (params, grads, scratch))
    if s_grads:
        scale_by_param_abs_(s_grads, s_params, eta, s_scratch)  # T g
    norm = global_norm(grads)  # ‖T g‖ over every perturbed tensor
    if s_grads:
        scale_(s_grads, s_scratch)  # T² g
    normalize_(grads, rho, norm)


class Asam(SharpnessAware):
    name = "asam"
    hp: AsamParams

    def setup(self) -> None:
        self.unscaled: set[Tensor] = set()
        if not self.hp.scale_biases:
            model = self.require_model("scale_biases=false finds biases by module")
            self.unscaled = {
                p
                for module in model.modules()
                for pname, p in module.named_parameters(recurse=False)
                if pname == "bias"
            }

    def perturbation(
        self, params: list[Tensor], grads: list[Tensor], rho: float, scratch: list[Tensor]
    ) -> None:
        scaled = [p not in self.unscaled for p in params]
        adaptive_direction_(params, grads, rho, self.hp.eta, scratch, scaled)
