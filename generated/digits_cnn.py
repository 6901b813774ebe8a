# generated, do not edit; run `nnspec codegen` to update
# source: specs/digits_cnn.yaml
# spec sha256: 81c2ba86bf99d03a85f35b23c1271928ef3957e05181376c89dff995a568c567
# nnspec: 0.1.0

import torch
from torch import nn


class DigitsCNN(nn.Module):
    """Small CNN for the 8x8 digits set.

    Input: [N, 1, 8, 8]; output: [N, 10]; 17,290 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        # layers[0] conv2d, specs/digits_cnn.yaml:7 -> [16, 8, 8]
        self.conv1 = nn.Conv2d(
            in_channels=1,
            out_channels=16,
            kernel_size=3,
            stride=1,
            padding=1,
            dilation=1,
            groups=1,
            bias=True,
            padding_mode="zeros",
        )
        # layers[1] batchnorm2d, specs/digits_cnn.yaml:8 -> [16, 8, 8]
        self.bn1 = nn.BatchNorm2d(
            num_features=16,
            eps=1e-05,
            momentum=0.1,
            affine=True,
            track_running_stats=True,
        )
        # layers[2] relu, specs/digits_cnn.yaml:9 -> [16, 8, 8]
        self.relu1 = nn.ReLU(inplace=False)
        # layers[3] maxpool2d, specs/digits_cnn.yaml:10 -> [16, 4, 4]
        self.pool1 = nn.MaxPool2d(
            kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=False
        )
        # layers[4] dropout2d, specs/digits_cnn.yaml:11 -> [16, 4, 4]
        self.drop1 = nn.Dropout2d(p=0.25, inplace=False)
        # layers[5] flatten, specs/digits_cnn.yaml:12 -> [256]
        self.flatten1 = nn.Flatten(start_dim=1, end_dim=-1)
        # layers[6] linear, specs/digits_cnn.yaml:13 -> [64]
        self.fc1 = nn.Linear(in_features=256, out_features=64, bias=True)
        # layers[7] relu, specs/digits_cnn.yaml:14 -> [64]
        self.relu2 = nn.ReLU(inplace=False)
        # layers[8] dropout, specs/digits_cnn.yaml:15 -> [64]
        self.drop_fc = nn.Dropout(p=0.4, inplace=False)
        # layers[9] linear, specs/digits_cnn.yaml:16 -> [10]
        self.head = nn.Linear(in_features=64, out_features=10, bias=True)

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
