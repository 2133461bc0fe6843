"""Importance-sampling scores for networks, where the smoothness constants L_i are unknown.

For a linear or random-features model the smoothness constant of example i is
L_i = ‖x_i‖² (Unified SAM, arbitrary sampling), computed once on the raw inputs
(`sam_core.data.linear_importance`). For any other model we take the norm of the loss gradient with
respect to the model's outputs, ‖∂ℓ_i/∂f(x_i)‖, as a cheap per-example stand-in
for ‖∇_w ℓ_i‖ (one no-grad forward over the training set, refreshed each epoch,
in closed form for cross-entropy and squared error). A fraction `UNIFORM_MIX`
of uniform probability is mixed in, so that an example the model fits well now
(q_i ≈ 0) can still be drawn, and its weight 1/(n q_i) stays bounded by n/UNIFORM_MIX.
"""

from __future__ import annotations

import torch
from torch import nn

# Models whose per-example smoothness is ‖x_i‖² and does not change as they train.
INPUT_NORM_MODELS = ("linear", "random_features")
UNIFORM_MIX = 0.1


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
