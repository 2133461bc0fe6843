"""Fully connected models: those of the theory papers (linear, random features,
one hidden layer) and the MLP; the two-layer ReLU family is in `two_layer`.

Every one flattens its input first, so it takes vectors and images alike.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sam_core.models.layers import activation, flat_size
from sam_core.models.registry import register
from sam_core.spec.catalog import MAX_WIDTH


@register("linear")
def build_linear(params, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """Least squares (regression) or logistic / softmax regression (classification)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(flat_size(input_shape), num_outputs, params.bias))


class RandomFeatures(nn.Module):
    """Random Fourier features of an RBF kernel with a trainable linear head.

    φ(x) = √(2/D) cos(Ωx + b), Ω ~ N(0, I/h²), b ~ U[0, 2π) approximates
    k(x, x') = exp(−‖x − x'‖² / 2h²) (Rahimi & Recht 2007), so the model is
    random-features kernel regression. Ω and b are buffers drawn from their own
    generator seeded by `feature_seed`: they never train and do not depend on
    the training seed.
    """

    def __init__(self, in_features: int, num_features: int, bandwidth: float, seed: int, out: int):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        omega = torch.randn(num_features, in_features, generator=generator) / bandwidth
        phase = torch.rand(num_features, generator=generator) * (2 * math.pi)
        self.register_buffer("omega", omega)
        self.register_buffer("phase", phase)
        self.omega: torch.Tensor
        self.phase: torch.Tensor
        self.scale = math.sqrt(2.0 / num_features)
        self.head = nn.Linear(num_features, out)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.cos(x.flatten(1) @ self.omega.T + self.phase)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register("random_features")
def build_random_features(params, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    return RandomFeatures(
        flat_size(input_shape),
        params.num_features,
        params.bandwidth,
        params.feature_seed,
        num_outputs,
    )


@register("one_hidden")
def build_one_hidden(params, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """One hidden layer, the student of Behdin & Mazumder (2023)'s teacher–student setting."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(flat_size(input_shape), params.width),
        activation(params.activation),
        nn.Linear(params.width, num_outputs),
    )


@register("mlp")
def build_mlp(params, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """Linear → [BatchNorm1d] → activation for each hidden width, then a linear output."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = flat_size(input_shape)
    for hidden in params.hidden:
        if not 1 <= hidden <= MAX_WIDTH:
            raise ValueError(f"mlp hidden widths must be 1 to {MAX_WIDTH}, got {params.hidden}")
        layers.append(nn.Linear(width, hidden, bias=not params.batchnorm))
        if params.batchnorm:
            layers.append(nn.BatchNorm1d(hidden))
        layers.append(activation(params.activation))
        width = hidden
    layers.append(nn.Linear(width, num_outputs))
    return nn.Sequential(*layers)
