# generated, do not edit; run `nnspec codegen` to update
# source: specs/cifar_resnet18.yaml
# model sha256: b90f1bc06e37ed8ffe5a3cb5a47f8333a50122edf329acd608d5a6f7e22bab38
# nnspec: 0.1.0

from collections import OrderedDict

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 convolutions around an identity shortcut (torchvision's BasicBlock)."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(
            in_channels, channels, 3, stride=stride, padding=1, bias=False
        )
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = downsample
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the block's output for a batch of inputs."""
        identity = x if self.downsample is None else self.downsample(x)
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu1(x)
        x = self.conv2(x)
        x = self.bn2(x)
        x = x + identity
        x = self.relu2(x)
        return x


class CifarResNet18(nn.Module):
    """The usual CIFAR-10 ResNet-18 (3x3 stem, no max pool, stages 64/128/256/512 of two
    BasicBlocks).

    Input: [N, 3, 32, 32]; output: [N, 10]; 11,173,962 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(
            OrderedDict(
                [
                    (
                        "basic_block1",
                        BasicBlock(
                            64,
                            128,
                            stride=2,
                            downsample=nn.Sequential(
                                OrderedDict(
                                    [
                                        (
                                            "conv1",
                                            nn.Conv2d(64, 128, 1, stride=2, bias=False),
                                        ),
                                        ("bn1", nn.BatchNorm2d(128)),
                                    ]
                                )
                            ),
                        ),
                    ),
                    ("basic_block2", BasicBlock(128, 128)),
                ]
            )
        )
        self.layer3 = nn.Sequential(
            OrderedDict(
                [
                    (
                        "basic_block1",
                        BasicBlock(
                            128,
                            256,
                            stride=2,
                            downsample=nn.Sequential(
                                OrderedDict(
                                    [
                                        (
                                            "conv1",
                                            nn.Conv2d(
                                                128, 256, 1, stride=2, bias=False
                                            ),
                                        ),
                                        ("bn1", nn.BatchNorm2d(256)),
                                    ]
                                )
                            ),
                        ),
                    ),
                    ("basic_block2", BasicBlock(256, 256)),
                ]
            )
        )
        self.layer4 = nn.Sequential(
            OrderedDict(
                [
                    (
                        "basic_block1",
                        BasicBlock(
                            256,
                            512,
                            stride=2,
                            downsample=nn.Sequential(
                                OrderedDict(
                                    [
                                        (
                                            "conv1",
                                            nn.Conv2d(
                                                256, 512, 1, stride=2, bias=False
                                            ),
                                        ),
                                        ("bn1", nn.BatchNorm2d(512)),
                                    ]
                                )
                            ),
                        ),
                    ),
                    ("basic_block2", BasicBlock(512, 512)),
                ]
            )
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten1 = nn.Flatten()
        self.fc = nn.Linear(512, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output [N, 10] of a batch of inputs [N, 3, 32, 32]."""
        x = self.conv1(x)  # [N, 64, 32, 32]
        x = self.bn1(x)  # [N, 64, 32, 32]
        x = self.relu(x)  # [N, 64, 32, 32]
        x = self.layer1(x)  # [N, 64, 32, 32]
        x = self.layer2(x)  # [N, 128, 16, 16]
        x = self.layer3(x)  # [N, 256, 8, 8]
        x = self.layer4(x)  # [N, 512, 4, 4]
        x = self.avgpool(x)  # [N, 512, 1, 1]
        x = self.flatten1(x)  # [N, 512]
        x = self.fc(x)  # [N, 10]
        return x
