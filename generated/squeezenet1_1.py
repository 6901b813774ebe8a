# generated, do not edit; run `nnspec codegen` to update
# source: specs/squeezenet1_1.yaml
# model sha256: 8bca34a1230ee6118a1a8a53095682684648802cef9420aa12c821b9504f9774
# nnspec: 0.1.0

from collections import OrderedDict

import torch
from torch import nn


class Fire(nn.Module):
    """A 1x1 squeeze conv, then 1x1 and 3x3 expand convs side by side, concatenated
    (torchvision's Fire)."""

    def __init__(
        self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int
    ) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(in_channels, squeeze, 1)
        self.squeeze_activation = nn.ReLU()
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
        self.expand1x1_activation = nn.ReLU()
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)
        self.expand3x3_activation = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the block's output for a batch of inputs."""
        x = self.squeeze(x)
        x = self.squeeze_activation(x)
        branch1 = self.expand1x1(x)
        branch1 = self.expand1x1_activation(branch1)
        branch2 = self.expand3x3(x)
        branch2 = self.expand3x3_activation(branch2)
        x = torch.cat([branch1, branch2], dim=1)
        return x


class SqueezeNet1_1(nn.Module):
    """torchvision's squeezenet1_1 (Fire modules; ImageNet layout, 1000 classes).

    Input: [N, 3, 224, 224]; output: [N, 1000]; 1,235,496 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                [
                    ("conv1", nn.Conv2d(3, 64, 3, stride=2)),
                    ("relu1", nn.ReLU()),
                    ("pool1", nn.MaxPool2d(3, stride=2, ceil_mode=True)),
                    ("fire1", Fire(64, 16, 64, 64)),
                    ("fire2", Fire(128, 16, 64, 64)),
                    ("pool2", nn.MaxPool2d(3, stride=2, ceil_mode=True)),
                    ("fire3", Fire(128, 32, 128, 128)),
                    ("fire4", Fire(256, 32, 128, 128)),
                    ("pool3", nn.MaxPool2d(3, stride=2, ceil_mode=True)),
                    ("fire5", Fire(256, 48, 192, 192)),
                    ("fire6", Fire(384, 48, 192, 192)),
                    ("fire7", Fire(384, 64, 256, 256)),
                    ("fire8", Fire(512, 64, 256, 256)),
                ]
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                [
                    ("drop1", nn.Dropout()),
                    ("final_conv", nn.Conv2d(512, 1000, 1)),
                    ("relu1", nn.ReLU()),
                    ("pool1", nn.AdaptiveAvgPool2d(1)),
                ]
            )
        )
        self.flatten1 = nn.Flatten()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output [N, 1000] of a batch of inputs [N, 3, 224, 224]."""
        x = self.features(x)  # [N, 512, 13, 13]
        x = self.classifier(x)  # [N, 1000, 1, 1]
        x = self.flatten1(x)  # [N, 1000]
        return x
