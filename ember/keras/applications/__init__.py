"""``keras.applications``: the classic image classifiers (ResNet50/101/152, VGG16/19,
MobileNetV2, InceptionV3) with Keras' names, arguments and
layer names (``include_top``, ``weights``, ``input_tensor``, ``input_shape``, ``pooling``,
``classes``, ``classifier_activation``), so a Keras ``.weights.h5`` file of the same
architecture loads by position as in Keras. ``weights='imagenet'`` is refused: Ember never
downloads; pass a local file.

Example:
    >>> from ember.keras import applications
    >>> m = applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, classes=10)
    >>> m.output_shape
    (None, 10)
"""

from ..layers.depthwise import DepthwiseConv2D
from . import inception_v3, mobilenet_v2, resnet, vgg
from .inception_v3 import InceptionV3
from .mobilenet_v2 import MobileNetV2
from .resnet import ResNet50, ResNet101, ResNet152
from .vgg import VGG16, VGG19

resnet50 = resnet
vgg16 = vgg
vgg19 = vgg

__all__ = [
    "VGG16",
    "VGG19",
    "DepthwiseConv2D",
    "InceptionV3",
    "MobileNetV2",
    "ResNet50",
    "ResNet101",
    "ResNet152",
    "inception_v3",
    "mobilenet_v2",
    "resnet",
    "resnet50",
    "vgg16",
    "vgg19",
]
