"""ESAM (Du et al., ICLR 2022; github.com/dydjw9/Efficient_SAM).

Stochastic weight perturbation: each parameter tensor is perturbed with
probability β (drawn per tensor, as the authors' code does; the others skip
their weight gradient in pass 1), ε = ρ g/(β ‖g‖) over the chosen tensors.
Sharpness-sensitive data selection: a no-grad forward at w + ε ranks examples
by their loss increase, and pass 2 runs on the ⌈γ n⌉ that rose most.
Needs a ``BatchClosure``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from sam_core.optim.closure import BatchClosure
from sam_core.optim.directions import normalize_
from sam_core.optim.engine import Closure, SharpnessAware
from sam_core.spec.optimizers import EsamParams


@contextmanager
def frozen(params: list[Tensor]) -> Iterator[None]:
    """No gradient for ``params`` inside the block (saves their weight-gradient kernels)."""
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class Esam(SharpnessAware):
    name = "esam"
    hp: EsamParams
    manual_two_pass = False
    uses_rng = True

    def sharpness_step(self, closure: Closure, rho: float) -> Any:
        if not isinstance(closure, BatchClosure):
            raise TypeError(
                "esam ranks examples and reruns a subset, so it needs a "
                "sam_core.optim.BatchClosure, not a plain callable"
            )
        chosen, dropped = self._draw_tensors()
        with frozen(dropped):
            loss = self.run_pass(closure)
        with self.math():
            if chosen:
                self.perturb(chosen, rho / self.hp.beta)
            self.save_batchnorm()
            self.zero_grads()
        index, kept = self._sharpest(closure)
        self.run_pass(lambda: closure.on_subset(index), zero=False)
        with self.math():
            self.restore_batchnorm()
            if chosen:  # no tensor drawn: nothing was perturbed (foreach_copy_ refuses [])
                self.restore(chosen)
            self.apply_base_step(grad_evals=1.0 + kept / len(closure))
        return loss

    def perturbation(
        self, params: list[Tensor], grads: list[Tensor], rho: float, scratch: list[Tensor]
    ) -> None:
        normalize_(grads, rho)  # rho here is ρ/β

    def _draw_tensors(self) -> tuple[list[Tensor], list[Tensor]]:
        draws = torch.rand(len(self.params), generator=self.generator, device=self.params[0].device)
        keep = (draws < self.hp.beta).tolist()
        chosen = [p for p, k in zip(self.params, keep, strict=True) if k]
        # With no tensor chosen, pass 1 still needs something to differentiate.
        dropped = [p for p, k in zip(self.params, keep, strict=True) if not k] if chosen else []
        return chosen, dropped

    @torch.no_grad()
    def _sharpest(self, closure: BatchClosure) -> tuple[Tensor, int]:
        """Indices of the ⌈γ n⌉ examples whose loss rose most from w to w + ε."""
        assert closure.first_losses is not None  # set by pass 1
        rise = closure.per_example_losses() - closure.first_losses
        kept = max(1, math.ceil(self.hp.gamma * len(closure)))
        return torch.topk(rise, kept, sorted=False).indices, kept
