# generated, do not edit; run `nnspec codegen` to update
"""The generated nn.Module class of every spec in specs/."""

from .cifar10_cnn import Cifar10CNN
from .cifar_resnet18 import CifarResNet18
from .dcgan_generator import DCGANGenerator
from .densenet121 import DenseNet121
from .digits_autoencoder import DigitsAutoencoder
from .digits_cnn import DigitsCNN
from .digits_conv_autoencoder import DigitsConvAutoencoder
from .digits_mlp import DigitsMLP
from .digits_resnet import DigitsResNet
from .fashion_mnist_cnn import FashionMnistCNN
from .mnist_cnn import MnistCNN
from .mobilenet_v2 import MobileNetV2
from .resnet18 import ResNet18
from .resnet50 import ResNet50
from .squeezenet1_1 import SqueezeNet1_1
from .text_bilstm import TextBiLSTM
from .text_transformer import TextTransformer
from .unet_small import UNetSmall
from .wine_mlp import WineMLP

__all__ = [
    "Cifar10CNN",
    "CifarResNet18",
    "DCGANGenerator",
    "DenseNet121",
    "DigitsAutoencoder",
    "DigitsCNN",
    "DigitsConvAutoencoder",
    "DigitsMLP",
    "DigitsResNet",
    "FashionMnistCNN",
    "MnistCNN",
    "MobileNetV2",
    "ResNet18",
    "ResNet50",
    "SqueezeNet1_1",
    "TextBiLSTM",
    "TextTransformer",
    "UNetSmall",
    "WineMLP",
]
