# generated, do not edit; run `nnspec codegen` to update
# source: specs/digits_conv_autoencoder.yaml
# model sha256: 093a34618fffff3a17be9e5dc8129a13316a93498ad18cbd267123b4d2c7b6aa
# nnspec: 0.1.0

import torch
from torch import nn


class DigitsConvAutoencoder(nn.Module):
    """Convolutional denoising autoencoder for scikit-learn's 8x8 digits: two
    strided-down conv stages to an 8x2x2 code, two transposed convolutions back to
    1x8x8, trained to give back each clean image from a copy with Gaussian noise (std
    0.3) on its pixels.

    Input: [N, 1, 8, 8]; output: [N, 1, 8, 8]; 1,913 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(16, 8, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.code = nn.MaxPool2d(2)
        self.deconv1 = nn.ConvTranspose2d(8, 16, 2, stride=2)
        self.relu3 = nn.ReLU()
        self.deconv2 = nn.ConvTranspose2d(16, 1, 2, stride=2)
        self.sigmoid1 = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output [N, 1, 8, 8] of a batch of inputs [N, 1, 8, 8]."""
        x = self.conv1(x)  # [N, 16, 8, 8]
        x = self.relu1(x)  # [N, 16, 8, 8]
        x = self.pool1(x)  # [N, 16, 4, 4]
        x = self.conv2(x)  # [N, 8, 4, 4]
        x = self.relu2(x)  # [N, 8, 4, 4]
        x = self.code(x)  # [N, 8, 2, 2]
        x = self.deconv1(x)  # [N, 16, 4, 4]
        x = self.relu3(x)  # [N, 16, 4, 4]
        x = self.deconv2(x)  # [N, 1, 8, 8]
        x = self.sigmoid1(x)  # [N, 1, 8, 8]
        return x
