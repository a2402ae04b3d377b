"""GoogLeNet / Inception v1 (Szegedy et al., 2014) with torchvision's module names.

As in torchvision, the "5x5" branch of each Inception block uses a 3x3 convolution (the layout
torchvision's published weights were trained with), every convolution is followed by batch norm
(eps 1e-3), and the two auxiliary classifiers exist only with ``aux_logits=True``.
"""

from __future__ import annotations

from typing import NamedTuple

import ember
from ember import nn

from ._registry import register_model

__all__ = ["BasicConv2d", "GoogLeNet", "GoogLeNetOutputs", "Inception", "InceptionAux", "googlenet"]


class GoogLeNetOutputs(NamedTuple):
    """Training-mode output with auxiliary classifiers: main logits and the two aux logits."""

    logits: ember.Tensor
    aux_logits2: ember.Tensor | None
    aux_logits1: ember.Tensor | None


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm, ReLU."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return nn.functional.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four parallel branches (1x1; 1x1 -> 3x3; 1x1 -> 3x3; 3x3 max pool -> 1x1) concatenated
    along channels."""

    def __init__(
        self,
        cin: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
    ) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(cin, ch1x1, 1)
        self.branch2 = nn.Sequential(
            BasicConv2d(cin, ch3x3red, 1), BasicConv2d(ch3x3red, ch3x3, 3, padding=1)
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(cin, ch5x5red, 1), BasicConv2d(ch5x5red, ch5x5, 3, padding=1)
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), BasicConv2d(cin, pool_proj, 1)
        )

    def forward(self, x):
        outs = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return ember.cat(outs, 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier on an intermediate feature map (used only while training)."""

    def __init__(self, cin: int, num_classes: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.conv = BasicConv2d(cin, 128, 1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = self.conv(nn.functional.adaptive_avg_pool2d(x, (4, 4))).flatten(1)
        return self.fc2(self.dropout(nn.functional.relu(self.fc1(x))))


# name: (in, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool projection)
_BLOCKS = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32),
    "inception3b": (256, 128, 128, 192, 32, 96, 64),
    "inception4a": (480, 192, 96, 208, 16, 48, 64),
    "inception4b": (512, 160, 112, 224, 24, 64, 64),
    "inception4c": (512, 128, 128, 256, 24, 64, 64),
    "inception4d": (512, 112, 144, 288, 32, 64, 64),
    "inception4e": (528, 256, 160, 320, 32, 128, 128),
    "inception5a": (832, 256, 160, 320, 32, 128, 128),
    "inception5b": (832, 384, 192, 384, 48, 128, 128),
}


class GoogLeNet(nn.Module):
    """Inception v1: a stem, nine Inception blocks, global average pooling, dropout, linear.

    In training mode with ``aux_logits=True`` the forward returns :class:`GoogLeNetOutputs`;
    otherwise the main logits. ``transform_input=True`` maps inputs normalised with ImageNet
    statistics to the [-1, 1] scaling the original weights expect (torchvision's option).

    Example:
        >>> import ember
        >>> m = ember.models.GoogLeNet(num_classes=5).eval()
        >>> m(ember.zeros(1, 3, 64, 64)).shape
        ember.Size([1, 5])
    """

    def __init__(
        self,
        num_classes: int = 1000,
        aux_logits: bool = False,
        transform_input: bool = False,
        dropout: float = 0.2,
        dropout_aux: float = 0.7,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"GoogLeNet: num_classes must be a positive int, got {num_classes!r}")
        if transform_input and in_channels != 3:
            raise ValueError("GoogLeNet: transform_input needs in_channels=3 (RGB statistics)")
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        self.conv1 = BasicConv2d(in_channels, 64, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, 1)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(*_BLOCKS["inception3a"])
        self.inception3b = Inception(*_BLOCKS["inception3b"])
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(*_BLOCKS["inception4a"])
        self.inception4b = Inception(*_BLOCKS["inception4b"])
        self.inception4c = Inception(*_BLOCKS["inception4c"])
        self.inception4d = Inception(*_BLOCKS["inception4d"])
        self.inception4e = Inception(*_BLOCKS["inception4e"])
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(*_BLOCKS["inception5a"])
        self.inception5b = Inception(*_BLOCKS["inception5b"])
        self.aux1: InceptionAux | None = None
        self.aux2: InceptionAux | None = None
        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, dropout_aux)
            self.aux2 = InceptionAux(528, num_classes, dropout_aux)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)

    def _transform_input(self, x):
        # (x * std + mean - 0.5) / 0.5 per channel, with ImageNet's mean and std
        mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
        chans = [
            x[:, i : i + 1] * (s / 0.5) + (m - 0.5) / 0.5 for i, (m, s) in enumerate(zip(mean, std))
        ]
        return ember.cat(chans, 1)

    def forward(self, x):
        if self.transform_input:
            x = self._transform_input(x)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.fc(self.dropout(self.avgpool(x).flatten(1)))
        if self.aux_logits and self.training:
            return GoogLeNetOutputs(x, aux2, aux1)
        return x


@register_model
def googlenet(num_classes: int = 1000, **kwargs) -> GoogLeNet:
    """GoogLeNet (6,624,904 parameters with 1000 classes and no auxiliary classifiers).

    Example:
        >>> import ember
        >>> ember.models.googlenet().fc.in_features
        1024
    """
    return GoogLeNet(num_classes=num_classes, **kwargs)
