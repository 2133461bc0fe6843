"""Small float64 models whose exact Hessians are cheap, and a quadratic L = ½ wᵀAw."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch.func import functional_call


class Quadratic(nn.Module):
    """Outputs ½ (w − c)ᵀA(w − c) for every example; with `mean_output` the loss is exactly that."""

    def __init__(self, matrix: Tensor, start: Tensor | None = None):
        super().__init__()
        self.register_buffer("matrix", matrix)
        self.w = nn.Parameter(torch.zeros(matrix.shape[0], dtype=matrix.dtype))
        if start is not None:
            with torch.no_grad():
                self.w.copy_(start)

    def forward(self, x: Tensor) -> Tensor:
        value = 0.5 * self.w @ self.matrix @ self.w
        return value.expand(x.shape[0])


def mean_output(out: Tensor, y: Tensor) -> Tensor:
    return out.mean()


def spd_matrix(eigenvalues: list[float], seed: int = 0) -> Tensor:
    """Q diag(eigenvalues) Qᵀ with a random orthogonal Q."""
    gen = torch.Generator().manual_seed(seed)
    n = len(eigenvalues)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    return q @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ q.T


def exact_hessian(model: nn.Module, loss_fn, x: Tensor, y: Tensor) -> Tensor:
    """The dense Hessian of the mean loss in the trainable parameters, model in eval mode."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    sizes = [p.numel() for _, p in named]
    flat = torch.cat([p.detach().reshape(-1) for _, p in named])

    def loss_of(vector: Tensor) -> Tensor:
        pieces = vector.split(sizes)
        params = {n: v.view_as(p) for (n, p), v in zip(named, pieces, strict=True)}
        return loss_fn(functional_call(model, params, (x,)), y)

    was_training = model.training
    model.eval()
    try:
        return torch.func.hessian(loss_of)(flat)
    finally:
        model.train(was_training)


@pytest.fixture
def classification():
    """A 6→10→3 tanh MLP (103 parameters) on 96 labelled examples, float64."""
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 3)).double()
    x = torch.randn(96, 6, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (96,), generator=gen)
    return model, nn.CrossEntropyLoss(), x, y


@pytest.fixture
def bn_regression():
    """A 5→12 MLP with BatchNorm and ReLU, 1 output, MSE, in train mode with warm BN stats."""
    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Linear(5, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 1), nn.Flatten(0)
    ).double()
    x = torch.randn(80, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(80, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        for _ in range(3):
            model(x)
    model.train()
    return model, nn.MSELoss(), x, y
