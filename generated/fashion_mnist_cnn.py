# generated, do not edit; run `nnspec codegen` to update
# source: specs/fashion_mnist_cnn.yaml
# model sha256: c80c772f15c301e20acd6eee4e7cc2d18093438d846209443ab6b0555324fa7f
# nnspec: 0.1.0

import torch
from torch import nn


class FashionMnistCNN(nn.Module):
    """CNN for Fashion-MNIST (28x28 grayscale clothing, 10 classes).

    Input: [N, 1, 28, 28]; output: [N, 10]; 833,898 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.relu2 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.drop1 = nn.Dropout2d(p=0.25)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu3 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.drop2 = nn.Dropout2d(p=0.25)
        self.flatten1 = nn.Flatten()
        self.fc1 = nn.Linear(3136, 256)
        self.relu4 = nn.ReLU()
        self.drop3 = nn.Dropout()
        self.head = nn.Linear(256, 10)

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
