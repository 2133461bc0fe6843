"""Small pieces the networks share: activations and the input-shape adapters."""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def flat_size(input_shape: tuple[int, ...]) -> int:
    return math.prod(input_shape)


def image_shape(input_shape: tuple[int, ...], model: str) -> tuple[int, int, int]:
    """The (channels, height, width) an image model sees for inputs of `input_shape`.

    Images come as (C, H, W) or (H, W). Flat vectors whose size is a square s²
    (scikit-learn digits: 64 = 8×8) or three squares 3s² are read as 1×s×s or
    3×s×s images.
    """
    if len(input_shape) == 3:
        c, h, w = input_shape
        return c, h, w
    if len(input_shape) == 2:
        h, w = input_shape
        return 1, h, w
    (d,) = input_shape
    for channels in (1, 3):
        side = math.isqrt(d // channels)
        if d % channels == 0 and side * side * channels == d:
            return channels, side, side
    raise ValueError(
        f"{model} needs image inputs (C, H, W), or flat ones of s² or 3·s² features; "
        f"got input shape {input_shape}"
    )


class ToImage(nn.Module):
    """Reshape each example to (C, H, W); a no-op on inputs already of that shape."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"
