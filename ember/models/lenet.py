"""LeNet-5 (LeCun et al., 1998) with ReLU and max pooling, for 1x32x32 inputs."""

from __future__ import annotations

from ember import nn

from ._registry import register_model

__all__ = ["LeNet5", "lenet5"]


class LeNet5(nn.Module):
    """Two 5x5 conv/pool stages and three linear layers (61,706 parameters for 10 classes).

    Example:
        >>> import ember
        >>> ember.models.LeNet5()(ember.zeros(1, 1, 32, 32)).shape
        ember.Size([1, 10])
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),
            nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


@register_model
def lenet5(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    """LeNet-5 for ``in_channels`` x 32 x 32 images.

    Example:
        >>> import ember
        >>> sum(p.numel() for p in ember.models.lenet5().parameters())
        61706
    """
    return LeNet5(num_classes=num_classes, in_channels=in_channels)
