"""ResNet-18 in its CIFAR form (He et al. 2016; the form SAM papers train).

A 3×3 stem with stride 1 and no max-pool, then four stages of two BasicBlocks
with widths w, 2w, 4w, 8w and strides 1, 2, 2, 2, global average pooling and
a linear layer. With w = 64 and 10 classes it has 11,173,962 parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from sam_core.models.layers import ToImage, image_shape
from sam_core.models.registry import register


class BasicBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus the shortcut (a 1×1 conv-BN where the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, shape: tuple[int, int, int], width: int, num_outputs: int) -> None:
        super().__init__()
        self.to_image = ToImage(shape)
        self.stem = nn.Sequential(
            nn.Conv2d(shape[0], width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        stages = []
        cin = width
        for i, stride in enumerate((1, 2, 2, 2)):
            cout = width * 2**i
            stages += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_outputs)
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(self.to_image(x))))


@register("resnet18")
def build_resnet18(params, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    return ResNet18(image_shape(input_shape, "resnet18"), params.width, num_outputs)
