"""The engine every rule shares: perturb → recompute → restore → base step.

``SharpnessAware`` is a ``torch.optim.Optimizer`` wrapping a base optimizer
(SGD or AdamW) whose ``param_groups`` and ``state`` it shares, so LR
schedulers and ``optimizer.state`` work on the wrapper. One step:

1. zero the gradients; pass 1 on the batch gives g (the closure's loss is returned);
2. the rule turns g into ε in place (``perturbation``), w is saved into a
   buffer allocated once, and w ← w + ε;
3. BatchNorm running statistics are snapshotted; the gradients are zeroed;
   pass 2 on the same batch gives g_p = ∇L(w + ε);
4. the statistics and w are copied back (bit-exact), the rule may rework g_p
   into ĝ (``descent``), ĝ is clipped if asked, and the base optimizer steps.

Rules override one hook; rules whose passes differ (RSAM, LookSAM, ESAM,
m-SAM) override ``sharpness_step`` and reuse the pieces here. With ρ_t = 0 a
step is the base optimizer's step on one pass, exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from sam_core.optim.batchnorm import BatchNormSnapshot
from sam_core.optim.directions import normalize_
from sam_core.spec.optimizers import StrictModel

Closure = Callable[[], Any]


class SharpnessAware(Optimizer):
    """Base of every rule; subclasses set ``name`` and override a hook."""

    name: ClassVar[str] = ""
    #: Buffers kept across steps and saved in ``state_dict`` (VaSSO's d, …).
    persistent: ClassVar[tuple[str, ...]] = ()
    #: Whether ``first_step``/``second_step`` describe the rule (two plain passes).
    manual_two_pass: ClassVar[bool] = True
    #: Whether the rule draws random numbers (its generator state is saved).
    uses_rng: ClassVar[bool] = False

    def __init__(
        self,
        base_optimizer: Optimizer,
        hp: StrictModel,
        *,
        model: nn.Module | None = None,
        max_grad_norm: float | None = None,
        seed: int | None = None,
    ) -> None:
        self.base_optimizer = base_optimizer
        self.hp = hp
        self.model = model
        self.max_grad_norm = max_grad_norm
        super().__init__(base_optimizer.param_groups, base_optimizer.defaults)
        self.param_groups = base_optimizer.param_groups
        self.state = base_optimizer.state
        self.params: list[Tensor] = [p for g in self.param_groups for p in g["params"]]
        self._index = {p: i for i, p in enumerate(self.params)}
        self._saved: list[Tensor | None] = [None] * len(self.params)
        self._perturbed: list[Tensor] = []
        self._bn: dict[int, BatchNormSnapshot] = {}
        self._active_bn: BatchNormSnapshot | None = None
        self.buffers: dict[str, list[Tensor]] = {}
        self.steps = 0
        self.last_grad_evals = 0.0
        #: Called with the parameters right before ĝ is clipped and applied: data-parallel
        #: `local` SAM averages each rank's ĝ here (sam_core.training.distributed).
        self.reduce_gradients: Callable[[list[Tensor]], None] | None = None
        device = self.params[0].device
        self._device_type = device.type
        self.generator = self._make_generator(device, seed) if self.uses_rng else None
        for group in self.param_groups:
            group.setdefault("initial_lr", group["lr"])
            if hasattr(hp, "rho"):
                group["rho"] = hp.rho
        self.setup()

    # ---- hooks -------------------------------------------------------------------------

    def setup(self) -> None:
        """Rule-specific preparation (parameter subsets found from the model, …)."""

    def select(self, params: list[Tensor]) -> list[Tensor]:
        """The parameters the rule perturbs, among those with a gradient."""
        return params

    def remember_gradient(self, params: list[Tensor], grads: list[Tensor]) -> None:
        """See the raw pass-1 gradient g before ε is formed (EMAs, GSAM's copy of g)."""

    def perturbation(
        self, params: list[Tensor], grads: list[Tensor], rho: float, scratch: list[Tensor]
    ) -> None:
        """Turn ``grads`` (g, plus wd·w if perturb_weight_decay) into ε, in place.

        ``scratch`` is parameter-shaped memory free to use until ε is formed.
        The default is SAM's ε = ρ g/‖g‖ (Foret et al. 2021, eq. 2).
        """
        normalize_(grads, rho)

    def descent(self, params: list[Tensor], grads: list[Tensor]) -> None:
        """Turn g_p (in ``grads``) into the gradient ĝ the base optimizer applies."""

    def sharpness_step(self, closure: Closure, rho: float) -> Any:
        """One step at ρ_t = rho > 0; the default is the generic two-pass step."""
        loss = self.run_pass(closure)
        self.first_step()
        self.run_pass(closure, zero=False)
        self.second_step()
        return loss

    # ---- torch.optim face ----------------------------------------------------------------

    def step(self, closure: Closure | None = None) -> Any:  # type: ignore[override]
        """The whole rule on the closure's batch; returns the first pass's loss."""
        if closure is None:
            raise ValueError(
                f"{self.name} needs step(closure): the closure runs forward and backward on "
                "the batch and returns the loss (or call first_step()/second_step())"
            )
        self._choose_batchnorm(getattr(closure, "model", None))
        rho = self.update_rho()
        if rho == 0.0:
            loss = self.run_pass(closure)
            self.apply_base_step(grad_evals=1.0)
            return loss
        return self.sharpness_step(closure, rho)

    def first_step(self) -> None:
        """After pass 1's backward: w ← w + ε, gradients zeroed for pass 2."""
        self._require_manual()
        with self.math():
            if self._active_bn is None:
                self._choose_batchnorm(None)
            rho = self.update_rho()
            params = self.select([p for p in self.params if p.grad is not None])
            self.perturb(params, rho)
            self.save_batchnorm()
            self.zero_grads()

    def second_step(self) -> None:
        """After pass 2's backward: restore w, form ĝ, base step."""
        self._require_manual()
        with self.math():
            self.restore_batchnorm()
            params = self._perturbed
            self.restore(params)
            self.descent(params, self.grads_of(params))
            self.apply_base_step(grad_evals=2.0)

    def state_dict(self) -> dict[str, Any]:
        rule: dict[str, Any] = {
            "steps": self.steps,
            "buffers": {
                name: [t.clone() for t in self.buffers[name]]
                for name in self.persistent
                if name in self.buffers
            },
        }
        if self.generator is not None:
            rule["generator"] = self.generator.get_state()
        return {"base": self.base_optimizer.state_dict(), "rule": rule}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base_optimizer.load_state_dict(state_dict["base"])
        # torch rebuilds param_groups on load: share the new ones again.
        self.param_groups = self.base_optimizer.param_groups
        self.state = self.base_optimizer.state
        rule = state_dict["rule"]
        self.steps = int(rule["steps"])
        self.buffers = {
            name: [t.to(p.device, p.dtype).clone() for t, p in zip(saved, self.params, strict=True)]
            for name, saved in rule["buffers"].items()
        }
        if self.generator is not None:
            self.generator.set_state(rule["generator"])

    # ---- pieces the steps are made of -----------------------------------------------------

    def run_pass(self, closure: Closure, *, zero: bool = True) -> Any:
        """Zero the gradients (unless already zero), then forward and backward."""
        if zero:
            self.zero_grads()
        with torch.enable_grad():
            return closure()

    def perturb(self, params: list[Tensor], rho: float) -> None:
        """Save w, form ε from the gradients of ``params`` and move w to w + ε."""
        self._perturbed = params
        grads = self.grads_of(params)
        saved = self.saved(params)
        # The raw g first (descent-side copies); weight decay enters ε only if asked.
        self.remember_gradient(params, grads)
        if getattr(self.hp, "perturb_weight_decay", False):
            self._add_weight_decay(params, grads)
        self.perturbation(params, grads, rho, saved)
        torch._foreach_copy_(saved, params)
        torch._foreach_add_(params, grads)

    def restore(self, params: list[Tensor]) -> None:
        """w ← the saved copy (bit-exact, not w + ε − ε)."""
        torch._foreach_copy_(params, self.saved(params))

    def apply_base_step(self, *, grad_evals: float) -> None:
        """Average ĝ over ranks if a hook is set, clip it if asked, step the base optimizer."""
        if self.reduce_gradients is not None:
            self.grads_of(self.params)  # every rank reduces the same tensors, zeros included
            self.reduce_gradients(self.params)
        if self.max_grad_norm is not None:
            with_grad = [p for p in self.params if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(with_grad, self.max_grad_norm, foreach=True)
        self.base_optimizer.step()
        self.steps += 1
        self.last_grad_evals = grad_evals
        # LR schedulers look for this flag to know the optimizer stepped (manual mode too).
        self._opt_called = True

    def update_rho(self) -> float:
        """ρ_t of the rule's `rho_schedule` (`RuleParams.rho_at`: constant, ρ·lr_t/lr_0 from
        the first param group, ρ/(t+1)^p or min(ρ, 1/(2t+1))); stored as group["rho"]."""
        rho = float(getattr(self.hp, "rho", 0.0))
        if hasattr(self.hp, "rho_at"):
            group = self.param_groups[0]
            rho = self.hp.rho_at(self.steps, group["lr"] / group["initial_lr"])
        if hasattr(self.hp, "rho"):
            for group in self.param_groups:
                group["rho"] = rho
        return rho

    def zero_grads(self) -> None:
        """Zero existing gradients in place (no reallocation between passes)."""
        grads = [p.grad for p in self.params if p.grad is not None]
        if grads:
            torch._foreach_zero_(grads)

    def grads_of(self, params: list[Tensor]) -> list[Tensor]:
        for p in params:
            if p.grad is None:  # a parameter unused by this pass: its gradient is zero
                p.grad = torch.zeros_like(p)
        return [p.grad for p in params]  # type: ignore[misc]

    def saved(self, params: list[Tensor]) -> list[Tensor]:
        """The saved-weights buffers of ``params``, allocated on first use only."""
        out = []
        for p in params:
            i = self._index[p]
            if self._saved[i] is None:
                self._saved[i] = torch.empty_like(p)
            out.append(self._saved[i])
        return out  # type: ignore[return-value]

    def buffer(self, name: str, params: list[Tensor]) -> list[Tensor]:
        """A persistent parameter-shaped buffer (zeros when first asked), for ``params``."""
        if name not in self.buffers:
            self.buffers[name] = [torch.zeros_like(p) for p in self.params]
        full = self.buffers[name]
        return [full[self._index[p]] for p in params]

    def save_batchnorm(self) -> None:
        if self._active_bn is not None:
            self._active_bn.save()

    def restore_batchnorm(self) -> None:
        if self._active_bn is not None:
            self._active_bn.restore()

    @contextmanager
    def math(self) -> Iterator[None]:
        """The rule's own arithmetic: no graph, full precision even inside autocast."""
        with torch.no_grad(), torch.autocast(self._device_type, enabled=False):
            yield

    # ---- internals -------------------------------------------------------------------------

    def _choose_batchnorm(self, closure_model: nn.Module | None) -> None:
        model = self.model if self.model is not None else closure_model
        if model is None:
            self._active_bn = None
            return
        if id(model) not in self._bn:
            self._bn[id(model)] = BatchNormSnapshot(model)
        self._active_bn = self._bn[id(model)]

    def _add_weight_decay(self, params: list[Tensor], grads: list[Tensor]) -> None:
        """g ← g + wd·w with each group's weight decay (Foret et al.'s L2 in the loss)."""
        decay = {p: g["weight_decay"] for g in self.param_groups for p in g["params"]}
        for p, grad in zip(params, grads, strict=True):
            if decay[p]:
                grad.add_(p, alpha=decay[p])

    def require_model(self, why: str) -> nn.Module:
        """The model, or a ValueError saying the rule needs it rather than bare parameters."""
        if self.model is None:
            raise ValueError(
                f"{self.name}: {why}, so it needs the model: pass the nn.Module as params, "
                "not an iterable of parameters"
            )
        return self.model

    def _require_manual(self) -> None:
        if not self.manual_two_pass:
            raise TypeError(
                f"{self.name} does not run as two plain passes; use step(closure) instead of "
                "first_step()/second_step()"
            )

    @staticmethod
    def _make_generator(device: torch.device, seed: int | None) -> torch.Generator:
        if seed is None:  # follow torch's global seed, which the trainer sets
            seed = int(torch.randint(0, 2**62, (), generator=torch.default_generator))
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        return generator
