"""VGG (Simonyan & Zisserman, 2014) with torchvision's layer indices, so state dicts load."""

from __future__ import annotations

from ember import nn

from ._registry import register_model

__all__ = ["VGG", "vgg11", "vgg11_bn", "vgg16", "vgg16_bn"]

# conv widths per stage; "M" is a 2x2 max pool
_CFGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


def make_layers(cfg: list[int | str], batch_norm: bool = False, in_channels: int = 3):
    """The ``features`` trunk of a VGG from a width list (``"M"`` = max pool).

    Example:
        >>> import ember
        >>> len(ember.models.vgg.make_layers([8, "M"], batch_norm=True))
        4
    """
    layers: list[nn.Module] = []
    c = in_channels
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, stride=2))
            continue
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"VGG: a layer width must be a positive int or 'M', got {v!r}")
        layers.append(nn.Conv2d(c, v, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        c = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """A conv trunk, a 7x7 adaptive average pool and the 4096-4096 classifier.

    ``hidden`` (an Ember addition; torchvision fixes it at 4096) narrows the two hidden
    classifier layers, and ``last_channels`` is the trunk's output width.

    Example:
        >>> import ember
        >>> from ember.models.vgg import VGG, make_layers
        >>> m = VGG(make_layers([8, "M"]), num_classes=3, hidden=16, last_channels=8)
        >>> m(ember.zeros(1, 3, 16, 16)).shape
        ember.Size([1, 3])
    """

    def __init__(
        self,
        features: nn.Module,
        num_classes: int = 1000,
        dropout: float = 0.5,
        hidden: int = 4096,
        last_channels: int = 512,
    ) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(last_channels * 7 * 7, hidden),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def _vgg(cfg: str, batch_norm: bool, num_classes: int, in_channels: int, **kwargs) -> VGG:
    features = make_layers(_CFGS[cfg], batch_norm=batch_norm, in_channels=in_channels)
    return VGG(features, num_classes=num_classes, **kwargs)


@register_model
def vgg11(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-11 (configuration A; 132,863,336 parameters with 1000 classes).

    Example:
        >>> import ember
        >>> ember.models.vgg11(num_classes=10, hidden=64).classifier[-1].out_features
        10
    """
    return _vgg("A", False, num_classes, in_channels, **kwargs)


@register_model
def vgg11_bn(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-11 with batch norm after each convolution (132,868,840 parameters).

    Example:
        >>> import ember
        >>> type(ember.models.vgg11_bn(hidden=64).features[1]).__name__
        'BatchNorm2d'
    """
    return _vgg("A", True, num_classes, in_channels, **kwargs)


@register_model
def vgg16(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-16 (configuration D; 138,357,544 parameters with 1000 classes).

    Example:
        >>> import ember
        >>> len(ember.models.vgg16(hidden=64).features)
        31
    """
    return _vgg("D", False, num_classes, in_channels, **kwargs)


@register_model
def vgg16_bn(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-16 with batch norm after each convolution (138,365,992 parameters).

    Example:
        >>> import ember
        >>> len(ember.models.vgg16_bn(hidden=64).features)
        44
    """
    return _vgg("D", True, num_classes, in_channels, **kwargs)
