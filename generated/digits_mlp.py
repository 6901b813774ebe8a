# generated, do not edit; run `nnspec codegen` to update
# source: specs/digits_mlp.yaml
# model sha256: 83a88c787d9a1591be433a85ec3bd681e5b9eaee573b18def6b442d729d1e373
# nnspec: 0.1.0

import torch
from torch import nn


class DigitsMLP(nn.Module):
    """Multilayer perceptron for scikit-learn's 8x8 digits, 64-256-256-10 with dropout.

    Input: [N, 1, 8, 8]; output: [N, 10]; 85,002 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.flatten1 = nn.Flatten()
        self.fc1 = nn.Linear(64, 256)
        self.relu1 = nn.ReLU()
        self.drop1 = nn.Dropout(p=0.2)
        self.fc2 = nn.Linear(256, 256)
        self.relu2 = nn.ReLU()
        self.drop2 = nn.Dropout(p=0.2)
        self.head = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output [N, 10] of a batch of inputs [N, 1, 8, 8]."""
        x = self.flatten1(x)  # [N, 64]
        x = self.fc1(x)  # [N, 256]
        x = self.relu1(x)  # [N, 256]
        x = self.drop1(x)  # [N, 256]
        x = self.fc2(x)  # [N, 256]
        x = self.relu2(x)  # [N, 256]
        x = self.drop2(x)  # [N, 256]
        x = self.head(x)  # [N, 10]
        return x
