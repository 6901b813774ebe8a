# generated, do not edit; run `nnspec codegen` to update
# source: specs/wine_mlp.json
# spec sha256: d27419a9c904c47bda4d2d34b73bce01bf7c669380eda53af5c4eb327141d2b8
# nnspec: 0.1.0

import torch
from torch import nn


class WineMLP(nn.Module):
    """MLP for the UCI wine data (13 chemical measurements, 3 cultivars), read from CSV.

    Input: [N, 13]; output: [N, 3]; 573 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        # layers[0] batchnorm1d, specs/wine_mlp.json:7 -> [13]
        self.norm_in = nn.BatchNorm1d(
            num_features=13,
            eps=1e-05,
            momentum=0.1,
            affine=True,
            track_running_stats=True,
        )
        # layers[1] linear, specs/wine_mlp.json:8 -> [32]
        self.fc1 = nn.Linear(in_features=13, out_features=32, bias=True)
        # layers[2] relu, specs/wine_mlp.json:9 -> [32]
        self.relu1 = nn.ReLU(inplace=False)
        # layers[3] dropout, specs/wine_mlp.json:10 -> [32]
        self.drop1 = nn.Dropout(p=0.3, inplace=False)
        # layers[4] linear, specs/wine_mlp.json:11 -> [3]
        self.head = nn.Linear(in_features=32, out_features=3, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output [N, 3] of a batch of inputs [N, 13]."""
        x = self.norm_in(x)  # [N, 13]
        x = self.fc1(x)  # [N, 32]
        x = self.relu1(x)  # [N, 32]
        x = self.drop1(x)  # [N, 32]
        x = self.head(x)  # [N, 3]
        return x
