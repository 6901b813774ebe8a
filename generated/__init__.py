# generated, do not edit; run `nnspec codegen` to update
"""The generated nn.Module class of every spec in specs/."""

from .cifar10_cnn import Cifar10CNN
from .cifar_resnet18 import CifarResNet18
from .densenet121 import DenseNet121
from .digits_autoencoder import DigitsAutoencoder
from .digits_cnn import DigitsCNN
from .digits_mlp import DigitsMLP
from .digits_resnet import DigitsResNet
from .fashion_mnist_cnn import FashionMnistCNN
from .mnist_cnn import MnistCNN
from .resnet18 import ResNet18
from .resnet50 import ResNet50
from .squeezenet1_1 import SqueezeNet1_1
from .wine_mlp import WineMLP

__all__ = [
    "Cifar10CNN",
    "CifarResNet18",
    "DenseNet121",
    "DigitsAutoencoder",
    "DigitsCNN",
    "DigitsMLP",
    "DigitsResNet",
    "FashionMnistCNN",
    "MnistCNN",
    "ResNet18",
    "ResNet50",
    "SqueezeNet1_1",
    "WineMLP",
]
