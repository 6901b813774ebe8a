# generated, do not edit; run `nnspec codegen` to update
# source: specs/mnist_cnn.yaml
# spec sha256: 4596969214608a983dfab55a6fa48d0068be6b127bd1223f0fd3a61d315ed65e
# nnspec: 0.1.0

import torch
from torch import nn


class MnistCNN(nn.Module):
    """Two conv blocks and a dense head for 28x28 MNIST digits.

    Input: [N, 1, 28, 28]; output: [N, 10]; 421,834 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        # layers[0] conv2d, specs/mnist_cnn.yaml:7 -> [32, 28, 28]
        self.conv1 = nn.Conv2d(
            in_channels=1,
            out_channels=32,
            kernel_size=3,
            stride=1,
            padding="same",
            dilation=1,
            groups=1,
            bias=True,
            padding_mode="zeros",
        )
        # layers[1] batchnorm2d, specs/mnist_cnn.yaml:8 -> [32, 28, 28]
        self.bn1 = nn.BatchNorm2d(
            num_features=32,
            eps=1e-05,
            momentum=0.1,
            affine=True,
            track_running_stats=True,
        )
        # layers[2] relu, specs/mnist_cnn.yaml:9 -> [32, 28, 28]
        self.relu1 = nn.ReLU(inplace=False)
        # layers[3] maxpool2d, specs/mnist_cnn.yaml:10 -> [32, 14, 14]
        self.pool1 = nn.MaxPool2d(
            kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=False
        )
        # layers[4] conv2d, specs/mnist_cnn.yaml:11 -> [64, 14, 14]
        self.conv2 = nn.Conv2d(
            in_channels=32,
            out_channels=64,
            kernel_size=3,
            stride=1,
            padding="same",
            dilation=1,
            groups=1,
            bias=True,
            padding_mode="zeros",
        )
        # layers[5] batchnorm2d, specs/mnist_cnn.yaml:12 -> [64, 14, 14]
        self.bn2 = nn.BatchNorm2d(
            num_features=64,
            eps=1e-05,
            momentum=0.1,
            affine=True,
            track_running_stats=True,
        )
        # layers[6] relu, specs/mnist_cnn.yaml:13 -> [64, 14, 14]
        self.relu2 = nn.ReLU(inplace=False)
        # layers[7] maxpool2d, specs/mnist_cnn.yaml:14 -> [64, 7, 7]
        self.pool2 = nn.MaxPool2d(
            kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=False
        )
        # layers[8] dropout2d, specs/mnist_cnn.yaml:15 -> [64, 7, 7]
        self.drop1 = nn.Dropout2d(p=0.25, inplace=False)
        # layers[9] flatten, specs/mnist_cnn.yaml:16 -> [3136]
        self.flatten1 = nn.Flatten(start_dim=1, end_dim=-1)
        # layers[10] linear, specs/mnist_cnn.yaml:17 -> [128]
        self.fc1 = nn.Linear(in_features=3136, out_features=128, bias=True)
        # layers[11] relu, specs/mnist_cnn.yaml:18 -> [128]
        self.relu3 = nn.ReLU(inplace=False)
        # layers[12] dropout, specs/mnist_cnn.yaml:19 -> [128]
        self.drop2 = nn.Dropout(p=0.5, inplace=False)
        # layers[13] linear, specs/mnist_cnn.yaml:20 -> [10]
        self.head = nn.Linear(in_features=128, out_features=10, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output [N, 10] of a batch of inputs [N, 1, 28, 28]."""
        x = self.conv1(x)  # [N, 32, 28, 28]
        x = self.bn1(x)  # [N, 32, 28, 28]
        x = self.relu1(x)  # [N, 32, 28, 28]
        x = self.pool1(x)  # [N, 32, 14, 14]
        x = self.conv2(x)  # [N, 64, 14, 14]
        x = self.bn2(x)  # [N, 64, 14, 14]
        x = self.relu2(x)  # [N, 64, 14, 14]
        x = self.pool2(x)  # [N, 64, 7, 7]
        x = self.drop1(x)  # [N, 64, 7, 7]
        x = self.flatten1(x)  # [N, 3136]
        x = self.fc1(x)  # [N, 128]
        x = self.relu3(x)  # [N, 128]
        x = self.drop2(x)  # [N, 128]
        x = self.head(x)  # [N, 10]
        return x
