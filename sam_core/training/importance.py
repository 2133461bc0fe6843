"""Importance-sampling scores: the smoothness constants L_i, exact where the model allows.

A model that is linear in its trainable parameters — every trainable
parameter in one final `nn.Linear` head f(x) = W ψ(x) + b, with ψ fixed
(linear regression: ψ(x) = x; random features: ψ(x) = φ(x); a kernel model on
fixed centres) — has per-example loss ℓ_i(θ) = ℓ(W ψ(x_i) + b, y_i), whose
Hessian in θ = (W, b) is ∇²ℓ ⊗ ψ̃_i ψ̃_iᵀ with ψ̃_i = (ψ(x_i), 1). So its
smoothness constant is L_i = c ‖ψ̃_i‖² = c (‖ψ(x_i)‖² + 1) (the 1 only with a
bias), c the curvature bound of ℓ in the output, the same for every example
(Unified SAM's arbitrary sampling, q_i ∝ L_i). It is computed once, from what
the model is linear in — not from the raw input (`closed_form_smoothness`).

For any other model the constants are unknown; we take the norm of the loss
gradient with respect to the model's outputs, ‖∂ℓ_i/∂f(x_i)‖, as a cheap
per-example stand-in for ‖∇_w ℓ_i‖ (one no-grad forward over the training set,
refreshed each epoch, in closed form for cross-entropy and squared error). A
fraction `UNIFORM_MIX` of uniform probability is mixed in, so that an example
the model fits well now (q_i ≈ 0) can still be drawn, and its weight
1/(n q_i) stays bounded by n/UNIFORM_MIX.
"""

from __future__ import annotations

import torch
from torch import nn

UNIFORM_MIX = 0.1


@torch.no_grad()
def closed_form_smoothness(
    model: nn.Module, x: torch.Tensor, batch_size: int
) -> torch.Tensor | None:
    """L_i = ‖ψ(x_i)‖² + 1 (with a bias; ‖ψ(x_i)‖² without), float64 `[n]`, or None.

    ψ(x_i) is the input of the model's only trainable module, an `nn.Linear`
    whose output must be the model's output (checked on every batch): then
    the model is linear in its parameters and L_i is exact up to a factor
    common to all examples. None when the model is not of that form. The
    model is put in eval mode for the pass and left in the mode it was in.
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    heads = [
        m
        for m in model.modules()
        if isinstance(m, nn.Linear) and any(p.requires_grad for p in m.parameters())
    ]
    if len(heads) != 1 or len(list(heads[0].parameters())) != len(trainable):
        return None
    head = heads[0]
    seen: dict[str, torch.Tensor] = {}
    handle = head.register_forward_hook(
        lambda _m, inputs, output: seen.update(features=inputs[0], output=output)
    )
    was_training = model.training
    model.eval()
    try:
        scores = []
        for start in range(0, len(x), batch_size):
            out = model(x[start : start + batch_size])
            if "output" not in seen or not torch.equal(seen["output"].reshape(out.shape), out):
                return None  # something acts after the head: not linear in the parameters
            features = seen["features"].double().flatten(1)
            scores.append(features.pow(2).sum(1) + (1.0 if head.bias is not None else 0.0))
            seen.clear()
    finally:
        handle.remove()
        model.train(was_training)
    return torch.cat(scores)


@torch.no_grad()
def output_gradient_probabilities(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: str, batch_size: int
) -> torch.Tensor:
    """q_i ∝ ‖∂ℓ_i/∂f(x_i)‖ at the current weights, mixed with uniform.

    Cross-entropy gives softmax(f) − onehot(y); squared error gives 2(f − y).
    The model is put in eval mode for the pass and left in the mode it was in.
    """
    was_training = model.training
    model.eval()
    norms = []
    for start in range(0, len(x), batch_size):
        out = model(x[start : start + batch_size]).float()
        target = y[start : start + batch_size]
        if task == "classification":
            grad = out.softmax(-1)
            grad[torch.arange(len(target), device=grad.device), target] -= 1.0
        else:
            grad = 2.0 * (out - target.reshape(out.shape).float())
        norms.append(grad.flatten(1).norm(dim=1))
    model.train(was_training)
    return _normalise(torch.cat(norms).double())


def _normalise(scores: torch.Tensor) -> torch.Tensor:
    total = scores.sum()
    n = len(scores)
    proportional = scores / total if total > 0 else torch.full_like(scores, 1.0 / n)
    return (1.0 - UNIFORM_MIX) * proportional + UNIFORM_MIX / n
