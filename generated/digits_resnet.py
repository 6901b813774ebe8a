# generated, do not edit; run `nnspec codegen` to update
# source: specs/digits_resnet.yaml
# model sha256: ff876238b29ca5aebb503fdbbfccb3a5dee1cea9568e724001fec3a4711110e0
# nnspec: 0.1.0

from collections import OrderedDict

import torch
from torch import nn


class ResBlock(nn.Module):
    """Two 3x3 convolutions around a shortcut (identity unless a projection is given)."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        shortcut: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(
            in_channels, channels, 3, stride=stride, padding=1, bias=False
        )
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = shortcut
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the block's output for a batch of inputs."""
        identity = x if self.shortcut is None else self.shortcut(x)
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu1(x)
        x = self.conv2(x)
        x = self.bn2(x)
        x = x + identity
        x = self.relu2(x)
        return x


class DigitsResNet(nn.Module):
    """A small residual net for the 8x8 digits set (two 16-channel blocks, one
    32-channel block with stride 2).

    Input: [N, 1, 8, 8]; output: [N, 10]; 24,378 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu1 = nn.ReLU()
        self.stage1 = nn.Sequential(ResBlock(16, 16), ResBlock(16, 16))
        self.stage2 = ResBlock(
            16,
            32,
            stride=2,
            shortcut=nn.Sequential(
                OrderedDict(
                    [
                        ("conv1", nn.Conv2d(16, 32, 1, stride=2, bias=False)),
                        ("bn1", nn.BatchNorm2d(32)),
                    ]
                )
            ),
        )
        self.pool1 = nn.AdaptiveAvgPool2d(1)
        self.flatten1 = nn.Flatten()
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output [N, 10] of a batch of inputs [N, 1, 8, 8]."""
        x = self.stem(x)  # [N, 16, 8, 8]
        x = self.bn1(x)  # [N, 16, 8, 8]
        x = self.relu1(x)  # [N, 16, 8, 8]
        x = self.stage1(x)  # [N, 16, 8, 8]
        x = self.stage2(x)  # [N, 32, 4, 4]
        x = self.pool1(x)  # [N, 32, 1, 1]
        x = self.flatten1(x)  # [N, 32]
        x = self.head(x)  # [N, 10]
        return x
