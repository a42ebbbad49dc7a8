"""DenseNet-121 from torchvision, unchanged, and the CIFAR-stem variant used to test the study.

torchvision's ImageNet stem (7x7 stride 2 convolution + max pool) shrinks a 32x32 image to
8x8 before the first dense block, so the last block runs at 1x1. The ``cifar_stem`` variant
replaces it with a 3x3 stride-1 convolution and no pooling, as CIFAR DenseNets do.
"""
import torch.nn as nn
from torchvision.models import densenet121 as tv_densenet121

from . import register_model


@register_model("densenet121", family="deep")
def densenet121(num_classes: int = 10) -> nn.Module:
    return tv_densenet121(weights=None, num_classes=num_classes)


@register_model("densenet121_cifar", family="deep")
def densenet121_cifar(num_classes: int = 10) -> nn.Module:
    model = tv_densenet121(weights=None, num_classes=num_classes)
    stem = nn.Conv2d(3, model.features.conv0.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(stem.weight)  # torchvision's own init for its convolutions
    model.features.conv0 = stem
    model.features.pool0 = nn.Identity()
    return model
