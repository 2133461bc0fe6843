"""A small CNN for 8×8 digits and 32×32 CIFAR images alike."""

from __future__ import annotations

from torch import nn

from sam_core.models.layers import ToImage, image_shape
from sam_core.models.registry import register


@register("cnn")
def build_cnn(params, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """3×3 conv → [BatchNorm2d] → ReLU → 2×2 max-pool per entry of `channels`.

    Pooling stops once the feature map is 1 pixel wide, so a deep stack still
    fits an 8×8 digit; global average pooling and a linear layer follow.
    """
    channels, height, width = image_shape(input_shape, "cnn")
    layers: list[nn.Module] = [ToImage((channels, height, width))]
    for out in params.channels:
        if not 1 <= out <= 4096:
            raise ValueError(f"cnn channels must be 1 to 4096, got {params.channels}")
        layers.append(nn.Conv2d(channels, out, 3, padding=1, bias=not params.batchnorm))
        if params.batchnorm:
            layers.append(nn.BatchNorm2d(out))
        layers.append(nn.ReLU())
        if min(height, width) >= 2:
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        channels = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_outputs)]
    return nn.Sequential(*layers)
