# generated, do not edit; run `nnspec codegen` to update
# source: specs/cifar10_cnn.yaml
# model sha256: bddd578d772c16c5a7cd36aff4f573afa2d566a42616925b432960c7f3ea2aa4
# nnspec: 0.1.0

import torch
from torch import nn


class Cifar10CNN(nn.Module):
    """VGG-style CNN for CIFAR-10 (32x32 colour images, 10 classes).

    Input: [N, 3, 32, 32]; output: [N, 10]; 141,354 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.relu2 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.drop1 = nn.Dropout2d(p=0.2)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.bn3 = nn.BatchNorm2d(64)
        self.relu3 = nn.ReLU()
        self.conv4 = nn.Conv2d(64, 64, 3, padding=1)
        self.bn4 = nn.BatchNorm2d(64)
        self.relu4 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.drop2 = nn.Dropout2d(p=0.3)
        self.conv5 = nn.Conv2d(64, 128, 3, padding=1)
        self.bn5 = nn.BatchNorm2d(128)
        self.relu5 = nn.ReLU()
        self.pool3 = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten1 = nn.Flatten()
        self.drop3 = nn.Dropout(p=0.4)
        self.head = nn.Linear(128, 10)

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
