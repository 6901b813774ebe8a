# generated, do not edit; run `nnspec codegen` to update
# source: specs/resnet50.yaml
# model sha256: 8a9aebe503c63b0aaa0efc8d878a7b9049521b56ca28af9ddc9612e75c32c1dc
# nnspec: 0.1.0

from collections import OrderedDict

import torch
from torch import nn


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 with the stride, 1x1 expand by 4, around a shortcut
    (torchvision's Bottleneck)."""

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.downsample = downsample
        self.relu3 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the block's output for a batch of inputs."""
        identity = x if self.downsample is None else self.downsample(x)
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu1(x)
        x = self.conv2(x)
        x = self.bn2(x)
        x = self.relu2(x)
        x = self.conv3(x)
        x = self.bn3(x)
        x = x + identity
        x = self.relu3(x)
        return x


class Stage(nn.Module):
    """torchvision's _make_layer - a Bottleneck with a projection shortcut, then blocks
    - 1 plain ones."""

    def __init__(
        self, in_channels: int, width: int, blocks: int, stride: int = 1
    ) -> None:
        super().__init__()
        self.bottleneck1 = Bottleneck(
            in_channels,
            width,
            stride=stride,
            downsample=nn.Sequential(
                OrderedDict(
                    [
                        (
                            "conv1",
                            nn.Conv2d(
                                in_channels, width * 4, 1, stride=stride, bias=False
                            ),
                        ),
                        ("bn1", nn.BatchNorm2d(width * 4)),
                    ]
                )
            ),
        )
        copies = []
        channels = width * 4
        for _ in range(blocks - 1):
            copies.append(Bottleneck(channels, width))
            channels = width * 4
        self.repeat1 = nn.Sequential(*copies)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the block's output for a batch of inputs."""
        x = self.bottleneck1(x)
        x = self.repeat1(x)
        return x


class ResNet50(nn.Module):
    """torchvision's resnet50 (v1.5, stride on the 3x3 conv; ImageNet layout, 1000
    classes).

    Input: [N, 3, 224, 224]; output: [N, 1000]; 25,557,032 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = Stage(64, 64, 3)
        self.layer2 = Stage(256, 128, 4, stride=2)
        self.layer3 = Stage(512, 256, 6, stride=2)
        self.layer4 = Stage(1024, 512, 3, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten1 = nn.Flatten()
        self.fc = nn.Linear(2048, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output [N, 1000] of a batch of inputs [N, 3, 224, 224]."""
        x = self.conv1(x)  # [N, 64, 112, 112]
        x = self.bn1(x)  # [N, 64, 112, 112]
        x = self.relu(x)  # [N, 64, 112, 112]
        x = self.maxpool(x)  # [N, 64, 56, 56]
        x = self.layer1(x)  # [N, 256, 56, 56]
        x = self.layer2(x)  # [N, 512, 28, 28]
        x = self.layer3(x)  # [N, 1024, 14, 14]
        x = self.layer4(x)  # [N, 2048, 7, 7]
        x = self.avgpool(x)  # [N, 2048, 1, 1]
        x = self.flatten1(x)  # [N, 2048]
        x = self.fc(x)  # [N, 1000]
        return x
