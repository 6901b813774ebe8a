# generated, do not edit; run `nnspec codegen` to update
"""The generated nn.Module class of every spec in specs/."""

from .cifar10_cnn import Cifar10CNN
from .digits_cnn import DigitsCNN
from .digits_mlp import DigitsMLP
from .fashion_mnist_cnn import FashionMnistCNN
from .mnist_cnn import MnistCNN
from .wine_mlp import WineMLP

__all__ = [
    "Cifar10CNN",
    "DigitsCNN",
    "DigitsMLP",
    "FashionMnistCNN",
    "MnistCNN",
    "WineMLP",
]
