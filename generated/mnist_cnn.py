# generated, do not edit; run `nnspec codegen` to update
# source: specs/mnist_cnn.yaml
# model sha256: 8f8288cfa01faaa5df79f610557fa3a993a2fd0a5d074404e8914e710bce52fd
# nnspec: 0.1.0

import torch
from torch import nn


class MnistCNN(nn.Module):
    """Two conv blocks and a dense head for 28x28 MNIST digits.

    Input: [N, 1, 28, 28]; output: [N, 10]; 421,834 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding="same")
        self.bn1 = nn.BatchNorm2d(32)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(32, 64, 3, padding="same")
        self.bn2 = nn.BatchNorm2d(64)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.drop1 = nn.Dropout2d(p=0.25)
        self.flatten1 = nn.Flatten()
        self.fc1 = nn.Linear(3136, 128)
        self.relu3 = nn.ReLU()
        self.drop2 = nn.Dropout()
        self.head = nn.Linear(128, 10)

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
