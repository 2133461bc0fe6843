"""WideResNet-16-k in its CIFAR form (Zagoruyko & Komodakis 2016).

Depth 16 gives two pre-activation blocks per stage; the stages have 16k, 32k
and 64k channels at strides 1, 2, 2 after a 16-channel 3×3 stem. Each block
is BN-ReLU-conv3×3-BN-ReLU-dropout-conv3×3, with a 1×1 conv shortcut where
the shape changes. WRN-16-4 with 10 classes has 2,748,890 parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from sam_core.models.layers import ToImage, image_shape
from sam_core.models.registry import register

DEPTH = 16
BLOCKS_PER_STAGE = (DEPTH - 4) // 6


class WideBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.relu(self.bn1(x))
        # The shortcut of a shape-changing block starts from the pre-activation too.
        skip = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        out = self.conv2(self.dropout(torch.relu(self.bn2(out))))
        return out + skip


class WideResNet16(nn.Module):
    def __init__(
        self, shape: tuple[int, int, int], widen: int, dropout: float, num_outputs: int
    ) -> None:
        super().__init__()
        self.to_image = ToImage(shape)
        self.stem = nn.Conv2d(shape[0], 16, 3, 1, 1, bias=False)
        blocks = []
        cin = 16
        for i, stride in enumerate((1, 2, 2)):
            cout = 16 * widen * 2**i
            for j in range(BLOCKS_PER_STAGE):
                blocks.append(WideBlock(cin, cout, stride if j == 0 else 1, dropout))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(cin, num_outputs),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(self.to_image(x))))


@register("wrn16")
def build_wrn16(params, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    shape = image_shape(input_shape, "wrn16")
    return WideResNet16(shape, params.widen_factor, params.dropout, num_outputs)
