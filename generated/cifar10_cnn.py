# generated, do not edit; run `nnspec codegen` to update
# source: specs/cifar10_cnn.yaml
# spec sha256: 929e51811687af28577eca42e1d99ce33058156c2c88ea64015e2f90589ec19b
# nnspec: 0.1.0

import torch
from torch import nn


class Cifar10CNN(nn.Module):
    """VGG-style CNN for CIFAR-10 (32x32 colour images, 10 classes).

    Input: [N, 3, 32, 32]; output: [N, 10]; 141,354 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        # layers[0] conv2d, specs/cifar10_cnn.yaml:7 -> [32, 32, 32]
        self.conv1 = nn.Conv2d(
            in_channels=3,
            out_channels=32,
            kernel_size=3,
            stride=1,
            padding=1,
            dilation=1,
            groups=1,
            bias=True,
            padding_mode="zeros",
        )
        # layers[1] batchnorm2d, specs/cifar10_cnn.yaml:8 -> [32, 32, 32]
        self.bn1 = nn.BatchNorm2d(
            num_features=32,
            eps=1e-05,
            momentum=0.1,
            affine=True,
            track_running_stats=True,
        )
        # layers[2] relu, specs/cifar10_cnn.yaml:9 -> [32, 32, 32]
        self.relu1 = nn.ReLU(inplace=False)
        # layers[3] conv2d, specs/cifar10_cnn.yaml:10 -> [32, 32, 32]
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
        # layers[4] batchnorm2d, specs/cifar10_cnn.yaml:11 -> [32, 32, 32]
        self.bn2 = nn.BatchNorm2d(
            num_features=32,
            eps=1e-05,
            momentum=0.1,
            affine=True,
            track_running_stats=True,
        )
        # layers[5] relu, specs/cifar10_cnn.yaml:12 -> [32, 32, 32]
        self.relu2 = nn.ReLU(inplace=False)
        # layers[6] maxpool2d, specs/cifar10_cnn.yaml:13 -> [32, 16, 16]
        self.pool1 = nn.MaxPool2d(
            kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=False
        )
        # layers[7] dropout2d, specs/cifar10_cnn.yaml:14 -> [32, 16, 16]
        self.drop1 = nn.Dropout2d(p=0.2, inplace=False)
        # layers[8] conv2d, specs/cifar10_cnn.yaml:15 -> [64, 16, 16]
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
        # layers[9] batchnorm2d, specs/cifar10_cnn.yaml:16 -> [64, 16, 16]
        self.bn3 = nn.BatchNorm2d(
            num_features=64,
            eps=1e-05,
            momentum=0.1,
            affine=True,
            track_running_stats=True,
        )
        # layers[10] relu, specs/cifar10_cnn.yaml:17 -> [64, 16, 16]
        self.relu3 = nn.ReLU(inplace=False)
        # layers[11] conv2d, specs/cifar10_cnn.yaml:18 -> [64, 16, 16]
        self.conv4 = nn.Conv2d(
            in_channels=64,
            out_channels=64,
            kernel_size=3,
            stride=1,
            padding=1,
            dilation=1,
            groups=1,
            bias=True,
            padding_mode="zeros",
        )
        # layers[12] batchnorm2d, specs/cifar10_cnn.yaml:19 -> [64, 16, 16]
        self.bn4 = nn.BatchNorm2d(
            num_features=64,
            eps=1e-05,
            momentum=0.1,
            affine=True,
            track_running_stats=True,
        )
        # layers[13] relu, specs/cifar10_cnn.yaml:20 -> [64, 16, 16]
        self.relu4 = nn.ReLU(inplace=False)
        # layers[14] maxpool2d, specs/cifar10_cnn.yaml:21 -> [64, 8, 8]
        self.pool2 = nn.MaxPool2d(
            kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=False
        )
        # layers[15] dropout2d, specs/cifar10_cnn.yaml:22 -> [64, 8, 8]
        self.drop2 = nn.Dropout2d(p=0.3, inplace=False)
        # layers[16] conv2d, specs/cifar10_cnn.yaml:23 -> [128, 8, 8]
        self.conv5 = nn.Conv2d(
            in_channels=64,
            out_channels=128,
            kernel_size=3,
            stride=1,
            padding=1,
            dilation=1,
            groups=1,
            bias=True,
            padding_mode="zeros",
        )
        # layers[17] batchnorm2d, specs/cifar10_cnn.yaml:24 -> [128, 8, 8]
        self.bn5 = nn.BatchNorm2d(
            num_features=128,
            eps=1e-05,
            momentum=0.1,
            affine=True,
            track_running_stats=True,
        )
        # layers[18] relu, specs/cifar10_cnn.yaml:25 -> [128, 8, 8]
        self.relu5 = nn.ReLU(inplace=False)
        # layers[19] adaptiveavgpool2d, specs/cifar10_cnn.yaml:26 -> [128, 1, 1]
        self.pool3 = nn.AdaptiveAvgPool2d(output_size=(1, 1))
        # layers[20] flatten, specs/cifar10_cnn.yaml:27 -> [128]
        self.flatten1 = nn.Flatten(start_dim=1, end_dim=-1)
        # layers[21] dropout, specs/cifar10_cnn.yaml:28 -> [128]
        self.drop3 = nn.Dropout(p=0.4, inplace=False)
        # layers[22] linear, specs/cifar10_cnn.yaml:29 -> [10]
        self.head = nn.Linear(in_features=128, out_features=10, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output [N, 10] of a batch of inputs [N, 3, 32, 32]."""
        x = self.conv1(x)  # [N, 32, 32, 32]
        x = self.bn1(x)  # [N, 32, 32, 32]
        x = self.relu1(x)  # [N, 32, 32, 32]
        x = self.conv2(x)  # [N, 32, 32, 32]
        x = self.bn2(x)  # [N, 32, 32, 32]
        x = self.relu2(x)  # [N, 32, 32, 32]
        x = self.pool1(x)  # [N, 32, 16, 16]
        x = self.drop1(x)  # [N, 32, 16, 16]
        x = self.conv3(x)  # [N, 64, 16, 16]
        x = self.bn3(x)  # [N, 64, 16, 16]
        x = self.relu3(x)  # [N, 64, 16, 16]
        x = self.conv4(x)  # [N, 64, 16, 16]
        x = self.bn4(x)  # [N, 64, 16, 16]
        x = self.relu4(x)  # [N, 64, 16, 16]
        x = self.pool2(x)  # [N, 64, 8, 8]
        x = self.drop2(x)  # [N, 64, 8, 8]
        x = self.conv5(x)  # [N, 128, 8, 8]
        x = self.bn5(x)  # [N, 128, 8, 8]
        x = self.relu5(x)  # [N, 128, 8, 8]
        x = self.pool3(x)  # [N, 128, 1, 1]
        x = self.flatten1(x)  # [N, 128]
        x = self.drop3(x)  # [N, 128]
        x = self.head(x)  # [N, 10]
        return x
