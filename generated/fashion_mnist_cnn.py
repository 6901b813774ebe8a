# generated, do not edit; run `nnspec codegen` to update
# source: specs/fashion_mnist_cnn.yaml
# spec sha256: f9cdbefc21acb71d0789e6520089d5d4c2ec5d3ab87df538b49e9679e0b57d06
# nnspec: 0.1.0

import torch
from torch import nn


class FashionMnistCNN(nn.Module):
    """CNN for Fashion-MNIST (28x28 grayscale clothing, 10 classes).

    Input: [N, 1, 28, 28]; output: [N, 10]; 833,898 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        # layers[0] conv2d, specs/fashion_mnist_cnn.yaml:7 -> [32, 28, 28]
        self.conv1 = nn.Conv2d(
            in_channels=1,
            out_channels=32,
            kernel_size=3,
            stride=1,
            padding=1,
            dilation=1,
            groups=1,
            bias=True,
            padding_mode="zeros",
        )
        # layers[1] relu, specs/fashion_mnist_cnn.yaml:8 -> [32, 28, 28]
        self.relu1 = nn.ReLU(inplace=False)
        # layers[2] conv2d, specs/fashion_mnist_cnn.yaml:9 -> [32, 28, 28]
        self.conv2 = nn.Conv2d(
            in_channels=32,
            out_channels=32,
            kernel_size=3,
            stride=1,
            padding=1,
            dilation=1,
            groups=1,
            bias=True,
            padding_mode="zeros",
        )
        # layers[3] batchnorm2d, specs/fashion_mnist_cnn.yaml:10 -> [32, 28, 28]
        self.bn1 = nn.BatchNorm2d(
            num_features=32,
            eps=1e-05,
            momentum=0.1,
            affine=True,
            track_running_stats=True,
        )
        # layers[4] relu, specs/fashion_mnist_cnn.yaml:11 -> [32, 28, 28]
        self.relu2 = nn.ReLU(inplace=False)
        # layers[5] maxpool2d, specs/fashion_mnist_cnn.yaml:12 -> [32, 14, 14]
        self.pool1 = nn.MaxPool2d(
            kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=False
        )
        # layers[6] dropout2d, specs/fashion_mnist_cnn.yaml:13 -> [32, 14, 14]
        self.drop1 = nn.Dropout2d(p=0.25, inplace=False)
        # layers[7] conv2d, specs/fashion_mnist_cnn.yaml:14 -> [64, 14, 14]
        self.conv3 = nn.Conv2d(
            in_channels=32,
            out_channels=64,
            kernel_size=3,
            stride=1,
            padding=1,
            dilation=1,
            groups=1,
            bias=True,
            padding_mode="zeros",
        )
        # layers[8] batchnorm2d, specs/fashion_mnist_cnn.yaml:15 -> [64, 14, 14]
        self.bn2 = nn.BatchNorm2d(
            num_features=64,
            eps=1e-05,
            momentum=0.1,
            affine=True,
            track_running_stats=True,
        )
        # layers[9] relu, specs/fashion_mnist_cnn.yaml:16 -> [64, 14, 14]
        self.relu3 = nn.ReLU(inplace=False)
        # layers[10] maxpool2d, specs/fashion_mnist_cnn.yaml:17 -> [64, 7, 7]
        self.pool2 = nn.MaxPool2d(
            kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=False
        )
        # layers[11] dropout2d, specs/fashion_mnist_cnn.yaml:18 -> [64, 7, 7]
        self.drop2 = nn.Dropout2d(p=0.25, inplace=False)
        # layers[12] flatten, specs/fashion_mnist_cnn.yaml:19 -> [3136]
        self.flatten1 = nn.Flatten(start_dim=1, end_dim=-1)
        # layers[13] linear, specs/fashion_mnist_cnn.yaml:20 -> [256]
        self.fc1 = nn.Linear(in_features=3136, out_features=256, bias=True)
        # layers[14] relu, specs/fashion_mnist_cnn.yaml:21 -> [256]
        self.relu4 = nn.ReLU(inplace=False)
        # layers[15] dropout, specs/fashion_mnist_cnn.yaml:22 -> [256]
        self.drop3 = nn.Dropout(p=0.5, inplace=False)
        # layers[16] linear, specs/fashion_mnist_cnn.yaml:23 -> [10]
        self.head = nn.Linear(in_features=256, out_features=10, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output [N, 10] of a batch of inputs [N, 1, 28, 28]."""
        x = self.conv1(x)  # [N, 32, 28, 28]
        x = self.relu1(x)  # [N, 32, 28, 28]
        x = self.conv2(x)  # [N, 32, 28, 28]
        x = self.bn1(x)  # [N, 32, 28, 28]
        x = self.relu2(x)  # [N, 32, 28, 28]
        x = self.pool1(x)  # [N, 32, 14, 14]
        x = self.drop1(x)  # [N, 32, 14, 14]
        x = self.conv3(x)  # [N, 64, 14, 14]
        x = self.bn2(x)  # [N, 64, 14, 14]
        x = self.relu3(x)  # [N, 64, 14, 14]
        x = self.pool2(x)  # [N, 64, 7, 7]
        x = self.drop2(x)  # [N, 64, 7, 7]
        x = self.flatten1(x)  # [N, 3136]
        x = self.fc1(x)  # [N, 256]
        x = self.relu4(x)  # [N, 256]
        x = self.drop3(x)  # [N, 256]
        x = self.head(x)  # [N, 10]
        return x
