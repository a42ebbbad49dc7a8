"""The CIFAR ResNet-18 (3x3 stem, no initial pooling), its Squeeze-and-Excitation variant,
and the plain network of the same depth: the controlled test of the skip connection.

Module names follow the study's printout (conv1, bn1, layer1..layer4, linear).
SE-ResNet-18 is the same builder with ``se=True``: every block rescales its residual
branch channel-wise before the addition. The plain networks are the same builder with
``shortcut=False``: every block keeps its two convolutions, BatchNorms and widths, and
loses its shortcut, the three 1x1 projections included (He et al. 2016, section 4.1,
"plain networks"). The 34-layer pair, He et al.'s stronger test, is registered beside
the 18-layer one.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import register_model


class SEModule(nn.Module):
    """Squeeze (global average pool) and excitation (bottleneck MLP + sigmoid) gate."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.adaptive_avg_pool2d(x, 1)
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(w))))
        return x * w


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, se: bool = False, shortcut: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = SEModule(planes) if se else None
        # None: a plain block, whose output is its residual branch alone
        self.shortcut: nn.Module | None = nn.Sequential() if shortcut else None
        if shortcut and (stride != 1 or in_planes != planes):
            # 1x1 projection where the shape changes (option B of He et al.)
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def _get_name(self) -> str:  # the printout names the block by what it is
        if self.shortcut is None:
            return "PlainBlock"
        return "SEBasicBlock" if self.se is not None else "BasicBlock"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.se is not None:
            out = self.se(out)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)


class ResNet(nn.Module):
    def __init__(self, num_blocks: tuple[int, ...] = (2, 2, 2, 2), num_classes: int = 10, se: bool = False,
                 shortcut: bool = True):
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(64, num_blocks[0], 1, se, shortcut)
        self.layer2 = self._make_layer(128, num_blocks[1], 2, se, shortcut)
        self.layer3 = self._make_layer(256, num_blocks[2], 2, se, shortcut)
        self.layer4 = self._make_layer(512, num_blocks[3], 2, se, shortcut)
        self.linear = nn.Linear(512, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int, se: bool, shortcut: bool) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s, se=se, shortcut=shortcut))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


@register_model("resnet18", family="deep")
def resnet18(num_classes: int = 10) -> nn.Module:
    return ResNet((2, 2, 2, 2), num_classes=num_classes)


@register_model("se_resnet18", family="deep")
def se_resnet18(num_classes: int = 10) -> nn.Module:
    return ResNet((2, 2, 2, 2), num_classes=num_classes, se=True)


@register_model("plain18", family="deep")
def plain18(num_classes: int = 10) -> nn.Module:
    return ResNet((2, 2, 2, 2), num_classes=num_classes, shortcut=False)


@register_model("resnet34", family="deep")
def resnet34(num_classes: int = 10) -> nn.Module:
    return ResNet((3, 4, 6, 3), num_classes=num_classes)


@register_model("plain34", family="deep")
def plain34(num_classes: int = 10) -> nn.Module:
    return ResNet((3, 4, 6, 3), num_classes=num_classes, shortcut=False)
