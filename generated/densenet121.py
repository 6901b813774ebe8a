# generated, do not edit; run `nnspec codegen` to update
# source: specs/densenet121.yaml
# model sha256: 4a6c7348fc0a94ad936197d6d26abc408622c6a466aba5be37d1a1788f5fa5a4
# nnspec: 0.1.0

from collections import OrderedDict

import torch
from torch import nn


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv, BN-ReLU-3x3 conv; the new growth channels are concatenated
    after the input."""

    def __init__(self, in_channels: int, growth: int, bn_size: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the block's output for a batch of inputs."""
        branch1 = self.norm1(x)
        branch1 = self.relu1(branch1)
        branch1 = self.conv1(branch1)
        branch1 = self.norm2(branch1)
        branch1 = self.relu2(branch1)
        branch1 = self.conv2(branch1)
        x = torch.cat([x, branch1], dim=1)
        return x


class Transition(nn.Module):
    """BN-ReLU-1x1 conv to the given channels (half of the input), then 2x2 average
    pooling."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.pool = nn.AvgPool2d(2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the block's output for a batch of inputs."""
        x = self.norm(x)
        x = self.relu(x)
        x = self.conv(x)
        x = self.pool(x)
        return x


class DenseNet121(nn.Module):
    """torchvision's densenet121 (growth 32, bn_size 4, blocks 6/12/24/16; ImageNet
    layout, 1000 classes).

    Input: [N, 3, 224, 224]; output: [N, 1000]; 7,978,856 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                [
                    ("conv0", nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)),
                    ("norm0", nn.BatchNorm2d(64)),
                    ("relu0", nn.ReLU()),
                    ("pool0", nn.MaxPool2d(3, stride=2, padding=1)),
                    (
                        "denseblock1",
                        nn.Sequential(
                            DenseLayer(64, 32),
                            DenseLayer(96, 32),
                            DenseLayer(128, 32),
                            DenseLayer(160, 32),
                            DenseLayer(192, 32),
                            DenseLayer(224, 32),
                        ),
                    ),
                    ("transition1", Transition(256, 128)),
                    (
                        "denseblock2",
                        nn.Sequential(
                            DenseLayer(128, 32),
                            DenseLayer(160, 32),
                            DenseLayer(192, 32),
                            DenseLayer(224, 32),
                            DenseLayer(256, 32),
                            DenseLayer(288, 32),
                            DenseLayer(320, 32),
                            DenseLayer(352, 32),
                            DenseLayer(384, 32),
                            DenseLayer(416, 32),
                            DenseLayer(448, 32),
                            DenseLayer(480, 32),
                        ),
                    ),
                    ("transition2", Transition(512, 256)),
                    (
                        "denseblock3",
                        nn.Sequential(
                            DenseLayer(256, 32),
                            DenseLayer(288, 32),
                            DenseLayer(320, 32),
                            DenseLayer(352, 32),
                            DenseLayer(384, 32),
                            DenseLayer(416, 32),
                            DenseLayer(448, 32),
                            DenseLayer(480, 32),
                            DenseLayer(512, 32),
                            DenseLayer(544, 32),
                            DenseLayer(576, 32),
                            DenseLayer(608, 32),
                            DenseLayer(640, 32),
                            DenseLayer(672, 32),
                            DenseLayer(704, 32),
                            DenseLayer(736, 32),
                            DenseLayer(768, 32),
                            DenseLayer(800, 32),
                            DenseLayer(832, 32),
                            DenseLayer(864, 32),
                            DenseLayer(896, 32),
                            DenseLayer(928, 32),
                            DenseLayer(960, 32),
                            DenseLayer(992, 32),
                        ),
                    ),
                    ("transition3", Transition(1024, 512)),
                    (
                        "denseblock4",
                        nn.Sequential(
                            DenseLayer(512, 32),
                            DenseLayer(544, 32),
                            DenseLayer(576, 32),
                            DenseLayer(608, 32),
                            DenseLayer(640, 32),
                            DenseLayer(672, 32),
                            DenseLayer(704, 32),
                            DenseLayer(736, 32),
                            DenseLayer(768, 32),
                            DenseLayer(800, 32),
                            DenseLayer(832, 32),
                            DenseLayer(864, 32),
                            DenseLayer(896, 32),
                            DenseLayer(928, 32),
                            DenseLayer(960, 32),
                            DenseLayer(992, 32),
                        ),
                    ),
                    ("norm5", nn.BatchNorm2d(1024)),
                ]
            )
        )
        self.relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten1 = nn.Flatten()
        self.classifier = nn.Linear(1024, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output [N, 1000] of a batch of inputs [N, 3, 224, 224]."""
        x = self.features(x)  # [N, 1024, 7, 7]
        x = self.relu(x)  # [N, 1024, 7, 7]
        x = self.avgpool(x)  # [N, 1024, 1, 1]
        x = self.flatten1(x)  # [N, 1024]
        x = self.classifier(x)  # [N, 1000]
        return x
