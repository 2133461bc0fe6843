"""Hessian-vector products of the measured loss (Pearlmutter 1994).

Hv = ∇(∇L(w)·v): a gradient taken with ``create_graph=True``, dotted with v,
differentiated again (reverse-over-reverse). `HessianOperator` keeps the
first-order graphs between products when asked (PyHessian does so for a
single batch): each further product then costs one double backward instead of
a forward, a backward and a double backward. ``docs/measures.md`` records
what a product costs against a gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from sam_core.sharpness.objective import Batches, Objective, grads, measuring


class HessianOperator:
    """v ↦ H v for the Hessian H of an `Objective` at its current weights, on flat vectors.

    ``cache_graph`` keeps every batch's gradient graph for the operator's
    lifetime: fastest for repeated products, at the memory of one
    double-backward graph per batch. ``None`` caches when there is one batch.
    """

    def __init__(self, objective: Objective, *, cache_graph: bool | None = None):
        self.objective = objective
        self.cache_graph = cache_graph
        self._cached: list[list[Tensor]] | None = None
        self._count = 0

    def _gradient_graphs(self) -> tuple[list[list[Tensor]], int]:
        obj = self.objective
        graphs, count = [], 0
        for n, weighted in obj.weighted_losses():
            graphs.append(grads(weighted, obj.params, create_graph=True))
            count += n
        return graphs, count

    def _product(self, graph: list[Tensor], vector: list[Tensor], retain: bool) -> Tensor:
        dot = sum((g * v).sum() for g, v in zip(graph, vector, strict=True))
        if not isinstance(dot, Tensor) or not dot.requires_grad:  # L is linear in w
            obj = self.objective
            return torch.zeros(obj.dim, device=obj.device, dtype=obj.dtype)
        return self.objective.flat(grads(dot, self.objective.params, retain_graph=retain))

    def __call__(self, vector: Tensor) -> Tensor:
        obj = self.objective
        parts = obj.unflat(vector.to(obj.dtype))
        if self._cached is None and self._should_cache():
            self._cached, self._count = self._gradient_graphs()
            obj.meter.grads += 1
        if self._cached is not None:
            total = sum(self._product(g, parts, retain=True) for g in self._cached)
            count = self._count
        else:
            total, count = torch.zeros(obj.dim, device=obj.device, dtype=obj.dtype), 0
            for n, weighted in obj.weighted_losses():
                graph = grads(weighted, obj.params, create_graph=True)
                total = total + self._product(graph, parts, retain=False)
                count += n
        obj.meter.hvps += 1
        if count == 0:
            raise ValueError("batches is empty: there are no examples to measure on")
        return torch.as_tensor(total).to(obj.dtype) / count

    def _should_cache(self) -> bool:
        if self.cache_graph is not None:
            return self.cache_graph
        batches = self.objective.source()
        return hasattr(batches, "__len__") and len(batches) == 1  # type: ignore[arg-type]

    def release(self) -> None:
        """Frees the cached graphs."""
        self._cached = None


def hessian_vector_product(
    model: nn.Module,
    loss_fn: Callable[..., Tensor],
    batches: Batches,
    vector: list[Tensor],
) -> list[Tensor]:
    """H v, v shaped like the trainable parameters, for the mean loss over all batches.

    The model is in eval mode during the product and left as it was found.
    """
    with measuring(model):
        objective = Objective(model, loss_fn, batches)
        if len(vector) != len(objective.params):
            raise ValueError(
                f"vector has {len(vector)} tensors, the model {len(objective.params)} "
                "trainable parameters"
            )
        product = HessianOperator(objective, cache_graph=False)(objective.flat(vector))
        return [t.detach().clone() for t in objective.unflat(product)]
