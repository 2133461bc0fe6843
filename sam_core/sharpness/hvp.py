"""Hessian-vector products of the measured loss (Pearlmutter 1994).

Hv = ∇(∇L(w)·v): a gradient taken with ``create_graph=True``, dotted with v,
differentiated again (reverse-over-reverse). `HessianOperator` keeps the
first-order graphs between products when asked (PyHessian does so for a
single batch): each further product then costs one double backward instead of
a forward, a backward and a double backward. ``docs/measures.md`` records
what a product costs against a gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from sam_core.sharpness.objective import Batches, Objective, as_batch_source, grads


class HessianOperator:
    """v ↦ H v for the Hessian H of an `Objective` at its current weights, on flat vectors.

    ``cache_graph`` keeps every batch's gradient graph for the operator's
    lifetime: fastest for repeated products, at the memory of one
    double-backward graph per batch. ``None`` caches when there is one batch.
    The cached gradient is kept flat (one vector with its graph), so a product
    is one dot and one double backward, nothing per parameter tensor.
    """

    def __init__(self, objective: Objective, *, cache_graph: bool | None = None):
        self.objective = objective
        self.cache_graph = cache_graph
        self._cached: list[Tensor] | None = None
        self._count = 0

    def _flat_gradient(self, weighted: Tensor) -> Tensor:
        obj = self.objective
        return torch.cat([g.reshape(-1) for g in grads(weighted, obj.params, create_graph=True)])

    def _product(self, flat_grad: Tensor, vector: Tensor, retain: bool) -> Tensor:
        if not flat_grad.requires_grad:  # L is linear in w: H = 0
            return torch.zeros_like(vector)
        parts = grads(flat_grad @ vector, self.objective.params, retain_graph=retain)
        return torch.cat([p.reshape(-1) for p in parts])

    def __call__(self, vector: Tensor) -> Tensor:
        obj = self.objective
        vector = vector.to(obj.dtype)
        if self._cached is None and self._should_cache():
            self._cached, self._count = [], 0
            for n, weighted in obj.weighted_losses():
                self._cached.append(self._flat_gradient(weighted))
                self._count += n
            obj.meter.grads += 1
        total: Tensor | None = None
        if self._cached is not None:
            count = self._count
            for flat_grad in self._cached:
                part = self._product(flat_grad, vector, retain=True)
                total = part if total is None else total.add_(part)
        else:
            count = 0
            for n, weighted in obj.weighted_losses():
                part = self._product(self._flat_gradient(weighted), vector, retain=False)
                total = part if total is None else total.add_(part)
                count += n
        obj.meter.hvps += 1
        if count == 0 or total is None:
            raise ValueError("batches is empty: there are no examples to measure on")
        return total.div_(count)

    def _should_cache(self) -> bool:
        if self.cache_graph is not None:
            return self.cache_graph
        batches = self.objective.source()
        return hasattr(batches, "__len__") and len(batches) == 1  # type: ignore[arg-type]

    def release(self) -> None:
        """Frees the cached graphs."""
        self._cached = None


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the product, the modes restored after; a product moves no weight."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode


def hessian_vector_product(
    model: nn.Module,
    loss_fn: Callable[..., Tensor],
    batches: Batches,
    vector: list[Tensor],
) -> list[Tensor]:
    """H v, v shaped like the trainable parameters, for the mean loss over all batches.

    Shapes: ``vector`` and the result are lists of tensors shaped like the
    model's trainable parameters. The model is in eval mode during the product
    and left as it was found (a product changes no weight or buffer). Costs per
    batch one forward, one backward with its graph and one double backward,
    done on the parameter tensors directly (no flat copies). Raises ValueError
    when ``vector`` does not match the parameters or ``batches`` is empty.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if len(vector) != len(params):
        raise ValueError(
            f"vector has {len(vector)} tensors, the model {len(params)} trainable parameters"
        )
    total: list[Tensor] | None = None
    count = 0
    with _eval_mode(model):
        for x, y in as_batch_source(batches)():
            n = x.shape[0]
            gradient = grads(loss_fn(model(x), y) * n, params, create_graph=True)
            dot = sum((g * v).sum() for g, v in zip(gradient, vector, strict=True))
            if isinstance(dot, Tensor) and dot.requires_grad:
                part = grads(dot, params)
            else:  # L is linear in w
                part = [torch.zeros_like(p) for p in params]
            total = part if total is None else [t.add_(q) for t, q in zip(total, part, strict=True)]
            count += n
    if total is None:
        raise ValueError("batches is empty: there are no examples to measure on")
    return [t.div_(count).detach() for t in total]
