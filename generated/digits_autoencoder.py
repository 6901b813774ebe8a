# generated, do not edit; run `nnspec codegen` to update
# source: specs/digits_autoencoder.yaml
# model sha256: 4e8647e900355777b737eb1482936d31a1bbc9b0e88881131e960978f0419312
# nnspec: 0.1.0

import torch
from torch import nn


class DigitsAutoencoder(nn.Module):
    """Denoising MLP autoencoder for scikit-learn's 8x8 digits: 64-128-16-128-64,
    trained to give back each clean image from a copy with Gaussian noise (std 0.3)
    added to its pixels.

    Input: [N, 1, 8, 8]; output: [N, 64]; 20,816 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.flatten1 = nn.Flatten()
        self.fc1 = nn.Linear(64, 128)
        self.relu1 = nn.ReLU()
        self.bottleneck = nn.Linear(128, 16)
        self.relu2 = nn.ReLU()
        self.fc3 = nn.Linear(16, 128)
        self.relu3 = nn.ReLU()
        self.decoded = nn.Linear(128, 64)
        self.sigmoid1 = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output [N, 64] of a batch of inputs [N, 1, 8, 8]."""
        x = self.flatten1(x)  # [N, 64]
        x = self.fc1(x)  # [N, 128]
        x = self.relu1(x)  # [N, 128]
        x = self.bottleneck(x)  # [N, 16]
        x = self.relu2(x)  # [N, 16]
        x = self.fc3(x)  # [N, 128]
        x = self.relu3(x)  # [N, 128]
        x = self.decoded(x)  # [N, 64]
        x = self.sigmoid1(x)  # [N, 64]
        return x
