# generated, do not edit; run `nnspec codegen` to update
# source: specs/wine_mlp.json
# model sha256: ede80c81428a424625cba25fc60847a0bcc3d7f971c3ea9160daab4fe6f9873f
# nnspec: 0.1.0

import torch
from torch import nn


class WineMLP(nn.Module):
    """MLP for the UCI wine data (13 chemical measurements, 3 cultivars), read from CSV.

    Input: [N, 13]; output: [N, 3]; 573 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.norm_in = nn.BatchNorm1d(13)
        self.fc1 = nn.Linear(13, 32)
        self.relu1 = nn.ReLU()
        self.drop1 = nn.Dropout(p=0.3)
        self.head = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output [N, 3] of a batch of inputs [N, 13]."""
        x = self.norm_in(x)  # [N, 13]
        x = self.fc1(x)  # [N, 32]
        x = self.relu1(x)  # [N, 32]
        x = self.drop1(x)  # [N, 32]
        x = self.head(x)  # [N, 3]
        return x
