# generated, do not edit; run `nnspec codegen` to update
# source: specs/digits_mlp.yaml
# spec sha256: d9202313e08dc5d5e7b6ad1f99518c0dc9232ddcadc0c11c179e172808a3325d
# nnspec: 0.1.0

import torch
from torch import nn


class DigitsMLP(nn.Module):
    """Multilayer perceptron for scikit-learn's 8x8 digits, 64-256-256-10 with dropout.

    Input: [N, 1, 8, 8]; output: [N, 10]; 85,002 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        # layers[0] flatten, specs/digits_mlp.yaml:7 -> [64]
        self.flatten1 = nn.Flatten(start_dim=1, end_dim=-1)
        # layers[1] linear, specs/digits_mlp.yaml:8 -> [256]
        self.fc1 = nn.Linear(in_features=64, out_features=256, bias=True)
        # layers[2] relu, specs/digits_mlp.yaml:9 -> [256]
        self.relu1 = nn.ReLU(inplace=False)
        # layers[3] dropout, specs/digits_mlp.yaml:10 -> [256]
        self.drop1 = nn.Dropout(p=0.2, inplace=False)
        # layers[4] linear, specs/digits_mlp.yaml:11 -> [256]
        self.fc2 = nn.Linear(in_features=256, out_features=256, bias=True)
        # layers[5] relu, specs/digits_mlp.yaml:12 -> [256]
        self.relu2 = nn.ReLU(inplace=False)
        # layers[6] dropout, specs/digits_mlp.yaml:13 -> [256]
        self.drop2 = nn.Dropout(p=0.2, inplace=False)
        # layers[7] linear, specs/digits_mlp.yaml:14 -> [10]
        self.head = nn.Linear(in_features=256, out_features=10, bias=True)

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
