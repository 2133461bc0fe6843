"""Hessian-vector products equal the exact Hessian times v, and weight batches by size."""

from __future__ import annotations

import torch

from sam_core.sharpness import hessian_vector_product
from sam_core.sharpness.hvp import HessianOperator
from sam_core.sharpness.objective import Objective, measuring

from .conftest import exact_hessian


def _random_like(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in model.parameters()]


def _flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors])


def test_hvp_equals_exact_hessian_times_v(classification):
    model, loss_fn, x, y = classification
    hessian = exact_hessian(model, loss_fn, x, y)
    vector = _random_like(model)
    product = hessian_vector_product(model, loss_fn, [(x, y)], vector)
    assert [p.shape for p in product] == [v.shape for v in vector]
    torch.testing.assert_close(_flat(product), hessian @ _flat(vector), rtol=1e-5, atol=1e-8)


def test_uneven_batches_give_the_hvp_of_their_concatenation(classification):
    model, loss_fn, x, y = classification
    vector = _random_like(model, seed=1)
    whole = hessian_vector_product(model, loss_fn, [(x, y)], vector)
    split = hessian_vector_product(model, loss_fn, [(x[:17], y[:17]), (x[17:], y[17:])], vector)
    torch.testing.assert_close(_flat(split), _flat(whole), rtol=1e-10, atol=1e-12)


def test_cached_operator_matches_recomputed_products(bn_regression):
    model, loss_fn, x, y = bn_regression
    hessian = exact_hessian(model, loss_fn, x, y)
    batches = [(x[:30], y[:30]), (x[30:], y[30:])]
    gen = torch.Generator().manual_seed(2)
    with measuring(model):
        objective = Objective(model, loss_fn, batches)
        cached = HessianOperator(objective, cache_graph=True)
        fresh = HessianOperator(objective, cache_graph=False)
        for _ in range(3):
            v = torch.randn(objective.dim, generator=gen, dtype=torch.float64)
            torch.testing.assert_close(cached(v), hessian @ v, rtol=1e-5, atol=1e-8)
            torch.testing.assert_close(fresh(v), cached(v), rtol=1e-10, atol=1e-12)
        assert objective.meter.grads == 1  # the cached graph was built once
        assert objective.meter.hvps == 9


def test_hvp_accepts_a_callable_that_yields_the_batches(classification):
    model, loss_fn, x, y = classification
    vector = _random_like(model, seed=3)
    listed = hessian_vector_product(model, loss_fn, [(x[:50], y[:50]), (x[50:], y[50:])], vector)
    generated = hessian_vector_product(
        model, loss_fn, lambda: ((x[i : i + 50], y[i : i + 50]) for i in (0, 50)), vector
    )
    torch.testing.assert_close(_flat(generated), _flat(listed), rtol=0, atol=0)
