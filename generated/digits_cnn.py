# generated, do not edit; run `nnspec codegen` to update
# source: specs/digits_cnn.yaml
# model sha256: 7ed7241e0af58c10169451a4252d81b26799adc5a67771ddcfeeb6235bdc11aa
# nnspec: 0.1.0

import torch
from torch import nn


class DigitsCNN(nn.Module):
    """Small CNN for the 8x8 digits set.

    Input: [N, 1, 8, 8]; output: [N, 10]; 17,290 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.drop1 = nn.Dropout2d(p=0.25)
        self.flatten1 = nn.Flatten()
        self.fc1 = nn.Linear(256, 64)
        self.relu2 = nn.ReLU()
        self.drop_fc = nn.Dropout(p=0.4)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output [N, 10] of a batch of inputs [N, 1, 8, 8]."""
        x = self.conv1(x)  # [N, 16, 8, 8]
        x = self.bn1(x)  # [N, 16, 8, 8]
        x = self.relu1(x)  # [N, 16, 8, 8]
        x = self.pool1(x)  # [N, 16, 4, 4]
        x = self.drop1(x)  # [N, 16, 4, 4]
        x = self.flatten1(x)  # [N, 256]
        x = self.fc1(x)  # [N, 64]
        x = self.relu2(x)  # [N, 64]
        x = self.drop_fc(x)  # [N, 64]
        x = self.head(x)  # [N, 10]
        return x
