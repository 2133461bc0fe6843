"""Importance scores of models linear in their parameters equal the true smoothness L_i.

For squared error ℓ_i = (f(x_i) − y_i)² the smoothness constant of example i is
the top eigenvalue of its Hessian in the parameters, computed here densely by
autograd, independently of the scores (whose factor 2 is common to all examples).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call

from sam_core.models.dense import RandomFeatures
from sam_core.training.importance import closed_form_smoothness


class KernelModel(nn.Module):
    """A kernel model on fixed centres: f(x) = Σ_j a_j exp(−‖x − c_j‖²/2) + b."""

    def __init__(self, centres: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("centres", centres)
        self.centres: torch.Tensor
        self.head = nn.Linear(len(centres), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gram = torch.exp(-0.5 * torch.cdist(x, self.centres) ** 2)
        return self.head(gram).squeeze(1)


def _true_smoothness(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """λ_max of each example's squared-error Hessian in the trainable parameters, over 2."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    sizes = [p.numel() for _, p in named]
    flat = torch.cat([p.detach().reshape(-1) for _, p in named])
    values = []
    for xi in x:

        def loss(vector: torch.Tensor, xi: torch.Tensor = xi) -> torch.Tensor:
            params = {n: v.view_as(p) for (n, p), v in zip(named, vector.split(sizes), strict=True)}
            return (functional_call(model, params, (xi[None],)) ** 2).sum()

        values.append(torch.linalg.eigvalsh(torch.func.hessian(loss)(flat))[-1] / 2)
    return torch.stack(values)


def _models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    centres = torch.randn(7, 4, dtype=torch.float64)
    return {
        "linear": nn.Sequential(nn.Flatten(), nn.Linear(4, 1)).double(),
        "linear_no_bias": nn.Sequential(nn.Flatten(), nn.Linear(4, 1, bias=False)).double(),
        "random_features": RandomFeatures(4, 16, 1.0, seed=3, out=1).double(),
        "kernel": KernelModel(centres).double(),
    }


@pytest.mark.parametrize("name", ["linear", "linear_no_bias", "random_features", "kernel"])
def test_scores_equal_the_true_smoothness_constants(name: str) -> None:
    model = _models()[name]
    x = torch.randn(9, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2
    scores = closed_form_smoothness(model, x, batch_size=4)
    assert scores is not None
    # float64 eigenvalues of 5–17-dimensional rank-one Hessians: agreement to ~1e-12
    torch.testing.assert_close(scores, _true_smoothness(model, x), rtol=1e-10, atol=1e-12)


def test_random_features_scores_follow_the_features_not_the_inputs() -> None:
    model = _models()["random_features"]
    x = torch.randn(40, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    x = x * torch.linspace(0.2, 3.0, 40, dtype=torch.float64)[:, None]  # ‖x_i‖² spread ~200×
    scores = closed_form_smoothness(model, x, batch_size=16)
    assert scores is not None
    features = model.features(x).pow(2).sum(1) + 1
    torch.testing.assert_close(scores, features, rtol=1e-12, atol=0.0)
    # ‖φ(x)‖² = (2/D) Σ cos² ≤ 2: the true constants lie in [1, 3], whatever ‖x_i‖ is
    assert float(scores.max() / scores.min()) < 3.0


def test_models_not_linear_in_their_parameters_get_none() -> None:
    torch.manual_seed(0)
    x = torch.randn(5, 4)
    two_layers = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 1))
    squashed = nn.Sequential(nn.Linear(4, 1), nn.Tanh())  # one Linear, but not the output
    assert closed_form_smoothness(two_layers, x, 5) is None
    assert closed_form_smoothness(squashed, x, 5) is None
    assert squashed.training  # left in the mode it was found in
