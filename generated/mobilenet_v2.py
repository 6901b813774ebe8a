# generated, do not edit; run `nnspec codegen` to update
# source: specs/mobilenet_v2.yaml
# model sha256: b18845f29d5af27d2e87b8ee2652e82dbf09f85016a1b18d9f51fd21b804dfca
# nnspec: 0.1.0

from collections import OrderedDict

import torch
from torch import nn


class ConvNormAct(nn.Module):
    """torchvision's Conv2dNormActivation - a convolution without bias, batch norm,
    ReLU6."""

    def __init__(
        self,
        in_channels: int,
        out: int,
        kernel: int = 3,
        stride: int = 1,
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(
            in_channels,
            out,
            kernel,
            stride=stride,
            padding=kernel // 2,
            groups=groups,
            bias=False,
        )
        self.bn1 = nn.BatchNorm2d(out)
        self.relu6_1 = nn.ReLU6()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the block's output for a batch of inputs."""
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu6_1(x)
        return x


class Inverted(nn.Module):
    """An inverted bottleneck without shortcut - 1x1 expand, 3x3 depthwise with the
    stride, 1x1 linear projection."""

    def __init__(
        self, in_channels: int, out: int, hidden: int, stride: int = 1
    ) -> None:
        super().__init__()
        self.conv_norm_act1 = ConvNormAct(in_channels, hidden, kernel=1)
        self.conv_norm_act2 = ConvNormAct(hidden, hidden, stride=stride, groups=hidden)
        self.conv1 = nn.Conv2d(hidden, out, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the block's output for a batch of inputs."""
        x = self.conv_norm_act1(x)
        x = self.conv_norm_act2(x)
        x = self.conv1(x)
        x = self.bn1(x)
        return x


class InvertedResidual(nn.Module):
    """The same bottleneck at stride 1 around an identity shortcut (torchvision's
    InvertedResidual)."""

    def __init__(self, in_channels: int, out: int, hidden: int) -> None:
        super().__init__()
        self.conv_norm_act1 = ConvNormAct(in_channels, hidden, kernel=1)
        self.conv_norm_act2 = ConvNormAct(hidden, hidden, groups=hidden)
        self.conv1 = nn.Conv2d(hidden, out, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the block's output for a batch of inputs."""
        identity = x
        x = self.conv_norm_act1(x)
        x = self.conv_norm_act2(x)
        x = self.conv1(x)
        x = self.bn1(x)
        x = x + identity
        return x


class MobileNetV2(nn.Module):
    """torchvision's mobilenet_v2 (width 1.0, ImageNet layout, 1000 classes), parameter
    for parameter.

    Input: [N, 3, 224, 224]; output: [N, 1000]; 3,504,872 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                [
                    ("conv_norm_act1", ConvNormAct(3, 32, stride=2)),
                    (
                        "group1",
                        nn.Sequential(
                            OrderedDict(
                                [
                                    ("conv_norm_act1", ConvNormAct(32, 32, groups=32)),
                                    ("conv1", nn.Conv2d(32, 16, 1, bias=False)),
                                    ("bn1", nn.BatchNorm2d(16)),
                                ]
                            )
                        ),
                    ),
                    ("inverted1", Inverted(16, 24, 96, stride=2)),
                    ("inverted_residual1", InvertedResidual(24, 24, 144)),
                    ("inverted2", Inverted(24, 32, 144, stride=2)),
                    ("inverted_residual2", InvertedResidual(32, 32, 192)),
                    ("inverted_residual3", InvertedResidual(32, 32, 192)),
                    ("inverted3", Inverted(32, 64, 192, stride=2)),
                    ("inverted_residual4", InvertedResidual(64, 64, 384)),
                    ("inverted_residual5", InvertedResidual(64, 64, 384)),
                    ("inverted_residual6", InvertedResidual(64, 64, 384)),
                    ("inverted4", Inverted(64, 96, 384)),
                    ("inverted_residual7", InvertedResidual(96, 96, 576)),
                    ("inverted_residual8", InvertedResidual(96, 96, 576)),
                    ("inverted5", Inverted(96, 160, 576, stride=2)),
                    ("inverted_residual9", InvertedResidual(160, 160, 960)),
                    ("inverted_residual10", InvertedResidual(160, 160, 960)),
                    ("inverted6", Inverted(160, 320, 960)),
                    ("conv_norm_act2", ConvNormAct(320, 1280, kernel=1)),
                ]
            )
        )
        self.pool1 = nn.AdaptiveAvgPool2d(1)
        self.flatten1 = nn.Flatten()
        self.drop1 = nn.Dropout(p=0.2)
        self.classifier = nn.Linear(1280, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output [N, 1000] of a batch of inputs [N, 3, 224, 224]."""
        x = self.features(x)  # [N, 1280, 7, 7]
        x = self.pool1(x)  # [N, 1280, 1, 1]
        x = self.flatten1(x)  # [N, 1280]
        x = self.drop1(x)  # [N, 1280]
        x = self.classifier(x)  # [N, 1000]
        return x
