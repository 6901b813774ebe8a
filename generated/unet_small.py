# generated, do not edit; run `nnspec codegen` to update
# source: specs/unet_small.yaml
# model sha256: 1e8328259bf199015d1fce36b155b915b35b37fe7e8979e6f9e877ae5d4a82ef
# nnspec: 0.1.0

import torch
from torch import nn


class DoubleConv(nn.Module):
    """Two 3x3 convolutions, each with batch norm and ReLU."""

    def __init__(self, in_channels: int, out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out, out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the block's output for a batch of inputs."""
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu1(x)
        x = self.conv2(x)
        x = self.bn2(x)
        x = self.relu2(x)
        return x


class UNetSmall(nn.Module):
    """A three-level U-Net (Ronneberger et al. 2015) for 1x64x64 images and two classes
    per pixel: each level keeps its input beside the path down and back up and
    concatenates both.

    Input: [N, 1, 64, 64]; output: [N, 2, 64, 64]; 117,090 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.enc1 = DoubleConv(1, 16)
        self.pool1 = nn.MaxPool2d(2)
        self.enc2 = DoubleConv(16, 32)
        self.pool2 = nn.MaxPool2d(2)
        self.bottleneck = DoubleConv(32, 64)
        self.up2 = nn.ConvTranspose2d(64, 32, 2, stride=2)
        self.dec2 = DoubleConv(64, 32)
        self.up1 = nn.ConvTranspose2d(32, 16, 2, stride=2)
        self.dec1 = DoubleConv(32, 16)
        self.head = nn.Conv2d(16, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output [N, 2, 64, 64] of a batch of inputs [N, 1, 64, 64]."""
        x = self.enc1(x)  # [N, 16, 64, 64]
        branch1 = self.pool1(x)  # [N, 16, 32, 32]
        branch1 = self.enc2(branch1)  # [N, 32, 32, 32]
        branch2 = self.pool2(branch1)  # [N, 32, 16, 16]
        branch2 = self.bottleneck(branch2)  # [N, 64, 16, 16]
        branch2 = self.up2(branch2)  # [N, 32, 32, 32]
        branch1 = torch.cat([branch1, branch2], dim=1)  # [N, 64, 32, 32]
        branch1 = self.dec2(branch1)  # [N, 32, 32, 32]
        branch1 = self.up1(branch1)  # [N, 16, 64, 64]
        x = torch.cat([x, branch1], dim=1)  # [N, 32, 64, 64]
        x = self.dec1(x)  # [N, 16, 64, 64]
        x = self.head(x)  # [N, 2, 64, 64]
        return x
