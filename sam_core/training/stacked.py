"""The members of a seed ensemble as one model: stacked parameters and stacked rules.

The members' trainable tensors live in one `[M, P]` tensor, a row per member
(`Layout` gives each parameter its view); `torch.func.functional_call` runs the
shared module with one member's views and `torch.func.vmap` runs all members
at once, each on its own batch. Because the members' losses are independent,
the gradient of their sum with respect to the stack is every member's own
gradient: one backward pass gives all of them (batched autograd), as one
`[M, P]` tensor, so each rule's arithmetic is a few whole-tensor ops.

The update rules are those of `sam_core.optim`, written for stacked tensors with
per-member hyperparameters as `[M]` tensors. SAM, USAM and Unified SAM share one
form, ε = (a + b/(‖g‖ + 1e-12)) g per member (docs/optimizers.md): SAM is a = 0, b = ρ;
USAM a = ρ, b = 0; Unified SAM a = ρ(1 − λ), b = ρλ (Oikonomou & Loizou 2025,
eq. 3). The base step follows `torch.optim.SGD` (momentum, Nesterov, weight
decay, no dampening) and `torch.optim.AdamW` operation for operation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from sam_core.optim.directions import NORM_EPS

Params = dict[str, Tensor]
Batches = list[tuple[Tensor, Tensor]]

# Rules whose ε is (a + b/‖g‖) g; `sgd` and `gd` take no second pass.
PERTURBING_RULES = ("sam", "usam", "unified_sam")
ONE_PASS_RULES = ("sgd", "gd")
RULES = ONE_PASS_RULES + PERTURBING_RULES


class Layout:
    """Where each trainable tensor of a member sits in its row of the `[M, P]` stack."""

    def __init__(self, template: nn.Module) -> None:
        named = [(n, p) for n, p in template.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in named]
        self.shapes = [tuple(p.shape) for _, p in named]
        self.sizes = [p.numel() for _, p in named]

    def stack(self, models: Sequence[nn.Module]) -> Tensor:
        """`[M, P]`: each model's trainable tensors, flattened and concatenated, a row each."""
        rows = []
        for model in models:
            tensors = dict(model.named_parameters())
            rows.append(torch.cat([tensors[n].detach().reshape(-1) for n in self.names]))
        return torch.stack(rows)

    def views(self, flat: Tensor) -> Params:
        """`{name: [M, *shape]}` views into the stack."""
        parts = flat.split(self.sizes, dim=1)
        return {
            name: part.view(flat.shape[0], *shape)
            for name, part, shape in zip(self.names, parts, self.shapes, strict=True)
        }

    def split(self, row: Tensor) -> list[Tensor]:
        """One member's row as its tensors, in `names` order (views)."""
        parts = row.split(self.sizes)
        return [part.view(shape) for part, shape in zip(parts, self.shapes, strict=True)]


class StackedModel:
    """The shared module, called with each member's parameters on each member's batch."""

    def __init__(
        self, template: nn.Module, loss_fn: nn.Module, shared_batch: bool, layout: Layout
    ) -> None:
        self.template, self.layout = template, layout
        self.per_example_fn = type(loss_fn)(reduction="none")
        self.shared_batch = shared_batch
        # vmap runs only the forward: the loss is plain batched arithmetic, cheaper outside.
        self.forward = vmap(self._member_forward, in_dims=(0, None if shared_batch else 0))
        self.forward_shared = vmap(self._member_forward, in_dims=(0, None))

    def gradients(
        self, flat: Tensor, x: Tensor, y: Tensor, weights: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Each member's loss `[M]`, outputs `[M, B, …]` and gradient `[M, P]`.

        A parameter the forward does not use gets a zero gradient, as in the solo engine.
        """
        leaf = flat.detach().requires_grad_()
        with torch.enable_grad():
            outputs = self.forward(self.layout.views(leaf), x)
            losses = self.batch_losses(outputs, y, weights)
            (grad,) = torch.autograd.grad(losses.sum(), leaf)
        return losses.detach(), outputs.detach(), grad

    def batch_losses(self, outputs: Tensor, y: Tensor, weights: Tensor | None) -> Tensor:
        """Each member's batch loss `[M]`, as `sam_core.optim.BatchClosure` computes it:
        the mean over examples of (weighted) per-example losses, in the model's precision
        (half precision reduced in float32)."""
        m, b = outputs.shape[:2]
        if self.shared_batch:
            y = y.expand(m, *y.shape)
        losses = self.per_example_fn(
            outputs.reshape(m * b, *outputs.shape[2:]), y.reshape(m * b, *y.shape[2:])
        )
        losses = losses.reshape(m, b, -1).mean(dim=2) if losses.dim() > 1 else losses.reshape(m, b)
        losses = losses.to(torch.promote_types(losses.dtype, torch.float32))
        if weights is None:
            return losses.mean(dim=1)
        return (losses * weights.to(losses.dtype)).mean(dim=1)

    @torch.no_grad()
    def evaluate(
        self, flat: Tensor, batches: Batches, teacher: Any = None
    ) -> tuple[list[float], list[float], list[float] | None]:
        """Each member's loss, accuracy and (with `teacher`) teacher error over `batches`.

        As `sam_core.sharpness.evaluate` and `prediction_error` take them for one
        model: the loss function's batch mean weighted by batch size; the accuracy
        when the targets are class labels, else nan; the mean squared distance to
        `teacher(x)` per output entry.
        """
        params = self.layout.views(flat)
        loss, correct, error = _Sum(), _Sum(), _Sum()
        count, entries, labelled = 0, 0, True
        for x, y in batches:
            outputs = self.forward_shared(params, x)
            m, b = outputs.shape[:2]
            targets = y.expand(m, *y.shape).reshape(m * b, *y.shape[1:])
            losses = self.per_example_fn(outputs.reshape(m * b, *outputs.shape[2:]), targets)
            loss.add(losses.reshape(m, -1).mean(dim=1).double() * b)
            count += b
            labelled = labelled and not torch.is_floating_point(y) and outputs.dim() == 3
            if labelled:
                correct.add((outputs.argmax(dim=2) == y).sum(dim=1).double())
            if teacher is not None:
                squares = (outputs - teacher(x).reshape(outputs.shape[1:]).to(outputs.dtype)) ** 2
                error.add(squares.reshape(m, -1).sum(dim=1).double())
                entries += outputs[0].numel()
        losses_out = loss.divided(count)
        accuracies = correct.divided(count) if labelled else [math.nan] * len(losses_out)
        return losses_out, accuracies, None if teacher is None else error.divided(entries)

    def _member_forward(self, params: Params, x: Tensor) -> Tensor:
        # No tied weights in the ensembled models: skip functional_call's untying pass.
        return functional_call(self.template, params, (x,), tie_weights=False)


class StackedRule:
    """One rule and its base optimizer over stacked parameters, hyperparameters per member."""

    def __init__(self, specs: Sequence[Any], flat: Tensor, sizes: list[int]) -> None:
        first = specs[0].optimizer
        self.rule, self.base = first.name, first.base.name
        self.nesterov = first.base.nesterov
        self.rho_schedule = getattr(first, "rho_schedule", "constant")
        self.lam_schedule = getattr(first, "lam_schedule", "constant")
        self.perturb_weight_decay = bool(getattr(first, "perturb_weight_decay", False))
        self.max_grad_norm = specs[0].training.grad_clip
        self.sizes = sizes  # each parameter's columns in a row (see `Layout`)
        column = _column_maker(specs, flat.device)
        self.lr0 = [s.optimizer.base.lr for s in specs]
        self.rho = [float(getattr(s.optimizer, "rho", 0.0)) for s in specs]
        self.lam = column(lambda s: getattr(s.optimizer, "lam", 1.0))
        self.weight_decay = column(lambda s: s.optimizer.base.weight_decay)
        self.momentum = column(lambda s: s.optimizer.base.momentum)
        self.beta1 = column(lambda s: s.optimizer.base.betas[0])
        self.beta2 = column(lambda s: s.optimizer.base.betas[1])
        self.eps = column(lambda s: s.optimizer.base.eps)
        slots = ("momentum_buffer",) if self.base == "sgd" else ("exp_avg", "exp_avg_sq")
        self.state = {slot: torch.zeros_like(flat) for slot in slots}
        # Weight decay and momentum as floats when all members share them (see `_sgd`).
        self.sgd_scalars = (shared(self.weight_decay), shared(self.momentum))
        self.steps = 0

    @property
    def perturbs(self) -> bool:
        return self.rule in PERTURBING_RULES

    def keep(self, index: Tensor, positions: list[int]) -> None:
        """Keep only the members at `positions` (`index` is the same as a tensor)."""
        self.lr0 = [self.lr0[k] for k in positions]
        self.rho = [self.rho[k] for k in positions]
        for name in ("lam", "weight_decay", "momentum", "beta1", "beta2", "eps"):
            setattr(self, name, getattr(self, name).index_select(0, index))
        for slot, tensor in self.state.items():
            self.state[slot] = tensor.index_select(0, index)
        self.sgd_scalars = (shared(self.weight_decay), shared(self.momentum))

    # --- ρ_t and λ_t ----------------------------------------------------------------------

    def rho_at(self, lrs: list[float]) -> list[float]:
        """ρ_t per member: constant, or ρ · lr_t / lr_0 (as `SharpnessAware.update_rho`)."""
        if self.rho_schedule != "lr":
            return list(self.rho)
        return [rho * (lr / lr0) for rho, lr, lr0 in zip(self.rho, lrs, self.lr0, strict=True)]

    def lam_at(self) -> Tensor:
        """λ_t of Unified SAM, with t counting steps from 1 (as `UnifiedSam.lam`)."""
        t = self.steps + 1
        if self.lam_schedule == "one_minus_inv_t":
            return torch.full_like(self.lam, 1.0 - 1.0 / t)
        if self.lam_schedule == "inv_t":
            return torch.full_like(self.lam, 1.0 / t)
        return self.lam

    # --- the perturbation ---------------------------------------------------------------

    @torch.no_grad()
    def perturbed(self, flat: Tensor, grad: Tensor, rho: Tensor) -> Tensor:
        """w + ε per member; ε from g (plus wd·w with `perturb_weight_decay`)."""
        if self.perturb_weight_decay:
            grad = grad + self.weight_decay[:, None] * flat
        if self.rule == "sam":
            factor = rho / (self.norms(grad) + NORM_EPS)
        elif self.rule == "usam":
            factor = rho
        else:  # unified_sam: ρ(1−λ) + ρλ/‖g‖, so λ = 1 and λ = 0 are SAM's and USAM's ε
            lam = self.lam_at()
            factor = rho * (1.0 - lam) + (rho * lam) / (self.norms(grad) + NORM_EPS)
        return flat + grad * factor[:, None]

    def norms(self, flat: Tensor) -> Tensor:
        """‖·‖₂ of each member's row `[M]`: per tensor, then over those, as
        `sam_core.optim.directions.global_norm` does (so it rounds as a solo run's)."""
        per_tensor = [part.norm(dim=1) for part in flat.split(self.sizes, dim=1)]
        return torch.linalg.vector_norm(torch.stack(per_tensor), dim=0)

    # --- the base step ---------------------------------------------------------------------

    @torch.no_grad()
    def apply(self, flat: Tensor, grad: Tensor, lrs: list[float]) -> None:
        """Clip ĝ if asked, then the base optimizer's step on every member, in place."""
        if self.max_grad_norm is not None:  # torch.nn.utils.clip_grad_norm_, per member
            coef = (self.max_grad_norm / (self.norms(grad) + 1e-6)).clamp(max=1.0)
            grad.mul_(coef[:, None])
        self.steps += 1
        lr = torch.tensor(lrs, dtype=torch.float32, device=flat.device)
        if self.base == "sgd":
            self._sgd(flat, grad, lrs[0] if len(set(lrs)) == 1 else lr)
        else:
            self._adamw(flat, grad, lr)

    def _sgd(self, flat: Tensor, grad: Tensor, lr: Tensor | float) -> None:
        """torch.optim.SGD, dampening 0: d = g + wd·w; b = μb + d; d = d + μb or b; w -= lr·d.

        A hyperparameter all members share is a float and goes through the very ops
        torch's SGD uses (`add(…, alpha=…)`), so the update rounds as a solo run's does.
        """
        wd, momentum = self.sgd_scalars
        buf = self.state["momentum_buffer"]
        d = add_scaled(grad, flat, wd)
        # μ = 0 gives b = d, torch's update without a buffer; step 1 gives b = d, its clone.
        buf.mul_(momentum if isinstance(momentum, float) else momentum[:, None]).add_(d)
        d = add_scaled(d, buf, momentum) if self.nesterov else buf
        add_scaled_(flat, d, -lr)

    def _adamw(self, flat: Tensor, grad: Tensor, lr: Tensor) -> None:
        """torch.optim.AdamW (single-tensor form, no amsgrad)."""
        t = self.steps
        m, v = self.state["exp_avg"], self.state["exp_avg_sq"]
        bias2_sqrt = (1 - self.beta2**t).sqrt()
        step_size = lr / (1 - self.beta1**t)
        flat.mul_(1 - (lr * self.weight_decay)[:, None])
        m.lerp_(grad, (1 - self.beta1)[:, None].expand_as(m))
        v.mul_(self.beta2[:, None]).add_(grad * grad * (1 - self.beta2)[:, None])
        denom = (v.sqrt() / bias2_sqrt[:, None]).add_(self.eps[:, None])
        flat.sub_(step_size[:, None] * m / denom)

    def member_state(
        self, position: int, params: list[nn.Parameter], layout: Layout
    ) -> dict[Any, Any]:
        """The base optimizer's `state` for one member, as torch's own optimizer keeps it."""
        if self.steps == 0:
            return {}
        if self.base == "sgd":
            if float(self.momentum[position]) == 0.0:  # torch keeps no buffer without μ
                return {}
            buffers = layout.split(self.state["momentum_buffer"][position])
            return {p: {"momentum_buffer": b.clone()} for p, b in zip(params, buffers, strict=True)}
        moments = zip(
            layout.split(self.state["exp_avg"][position]),
            layout.split(self.state["exp_avg_sq"][position]),
            strict=True,
        )
        return {
            p: {
                "step": torch.tensor(float(self.steps)),
                "exp_avg": m.clone(),
                "exp_avg_sq": v.clone(),
            }
            for p, (m, v) in zip(params, moments, strict=True)
        }


class _Sum:
    """A running sum of `[M]` tensors."""

    def __init__(self) -> None:
        self.total: Tensor | None = None

    def add(self, value: Tensor) -> None:
        self.total = value if self.total is None else self.total + value

    def divided(self, count: int) -> list[float]:
        if self.total is None:
            raise ValueError("batches is empty: there are no examples to evaluate on")
        return (self.total / count).tolist()


def shared(values: Tensor) -> Tensor | float:
    """The one value all members have, as a float; else the `[M]` tensor itself."""
    first = values[0]
    return float(first) if bool((values == first).all()) else values


def add_scaled(a: Tensor, b: Tensor, scale: Tensor | float) -> Tensor:
    """a + scale·b for `[M, P]` tensors, with `scale` one float or one value per member."""
    if isinstance(scale, float):
        return a.add(b, alpha=scale)
    return a + scale[:, None] * b


def add_scaled_(a: Tensor, b: Tensor, scale: Tensor | float) -> None:
    """a ← a + scale·b, in place."""
    if isinstance(scale, float):
        a.add_(b, alpha=scale)
    else:
        a.add_(scale[:, None] * b)


def _column_maker(specs: Sequence[Any], device: torch.device) -> Any:
    def column(read: Any) -> Tensor:
        return torch.tensor([float(read(s)) for s in specs], dtype=torch.float32, device=device)

    return column
