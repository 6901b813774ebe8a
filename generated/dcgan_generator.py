# generated, do not edit; run `nnspec codegen` to update
# source: specs/dcgan_generator.yaml
# model sha256: 478d8ec646a1191b86636d43b2778da3052a021bb55e695693a0ce91c73370b1
# nnspec: 0.1.0

import torch
from torch import nn


class DCGANGenerator(nn.Module):
    """The generator of DCGAN (Radford et al. 2016; PyTorch's DCGAN tutorial, ngf 64): a
    100-number code to a 3x64x64 image through four strided transposed convolutions.
    nnspec has no adversarial training; the training section below fits it as a decoder
    of (code, image) pairs.

    Input: [N, 100]; output: [N, 3, 64, 64]; 3,576,704 trainable parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        self.unflatten1 = nn.Unflatten(dim=1, unflattened_size=(100, 1, 1))
        self.deconv1 = nn.ConvTranspose2d(100, 512, 4, bias=False)
        self.bn1 = nn.BatchNorm2d(512)
        self.relu1 = nn.ReLU()
        self.deconv2 = nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(256)
        self.relu2 = nn.ReLU()
        self.deconv3 = nn.ConvTranspose2d(256, 128, 4, stride=2, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(128)
        self.relu3 = nn.ReLU()
        self.deconv4 = nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1, bias=False)
        self.bn4 = nn.BatchNorm2d(64)
        self.relu4 = nn.ReLU()
        self.deconv5 = nn.ConvTranspose2d(64, 3, 4, stride=2, padding=1, bias=False)
        self.tanh1 = nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output [N, 3, 64, 64] of a batch of inputs [N, 100]."""
        x = self.unflatten1(x)  # [N, 100, 1, 1]
        x = self.deconv1(x)  # [N, 512, 4, 4]
        x = self.bn1(x)  # [N, 512, 4, 4]
        x = self.relu1(x)  # [N, 512, 4, 4]
        x = self.deconv2(x)  # [N, 256, 8, 8]
        x = self.bn2(x)  # [N, 256, 8, 8]
        x = self.relu2(x)  # [N, 256, 8, 8]
        x = self.deconv3(x)  # [N, 128, 16, 16]
        x = self.bn3(x)  # [N, 128, 16, 16]
        x = self.relu3(x)  # [N, 128, 16, 16]
        x = self.deconv4(x)  # [N, 64, 32, 32]
        x = self.bn4(x)  # [N, 64, 32, 32]
        x = self.relu4(x)  # [N, 64, 32, 32]
        x = self.deconv5(x)  # [N, 3, 64, 64]
        x = self.tanh1(x)  # [N, 3, 64, 64]
        return x
