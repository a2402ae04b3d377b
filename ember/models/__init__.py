"""Model zoo: torchvision-style constructors whose parameter names match PyTorch's
(torchvision for vision models, Hugging Face ``transformers`` for BERT and GPT-2), so
state dicts move between the frameworks by name.

Example:
    >>> import ember
    >>> m = ember.models.get("resnet18", num_classes=10)
    >>> m(ember.zeros(2, 3, 32, 32)).shape
    ember.Size([2, 10])
"""

from . import weights
from ._bert import (
    BertConfig,
    BertModel,
    BertOutput,
    bert,
    bert_base,
    bert_state_dict_from_hf,
    minilm_l6,
)
from ._gpt2 import GPT2, GPT2Config, gpt2, gpt2_small, gpt2_state_dict_from_hf
from ._registry import get, list_models, register_model
from .googlenet import GoogLeNet, GoogLeNetOutputs, Inception, googlenet
from .lenet import LeNet5, lenet5
from .lstm_lm import LSTMLanguageModel, lstm_lm
from .mobilenet import InvertedResidual, MobileNetV2, mobilenet_v2
from .resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50
from .sentence import SentenceEncoder, all_minilm_l6_v2, load_tokenizer, mean_pooling
from .transfer import freeze, param_groups, replace_head, trainable_parameter_names, unfreeze
from .vgg import VGG, vgg11, vgg11_bn, vgg16, vgg16_bn
from .weights import load_pretrained

__all__ = [
    "GPT2",
    "VGG",
    "BasicBlock",
    "BertConfig",
    "BertModel",
    "BertOutput",
    "Bottleneck",
    "GPT2Config",
    "GoogLeNet",
    "GoogLeNetOutputs",
    "Inception",
    "InvertedResidual",
    "LSTMLanguageModel",
    "LeNet5",
    "MobileNetV2",
    "ResNet",
    "SentenceEncoder",
    "all_minilm_l6_v2",
    "bert",
    "bert_base",
    "bert_state_dict_from_hf",
    "freeze",
    "get",
    "googlenet",
    "gpt2",
    "gpt2_small",
    "gpt2_state_dict_from_hf",
    "lenet5",
    "list_models",
    "load_pretrained",
    "load_tokenizer",
    "lstm_lm",
    "mean_pooling",
    "minilm_l6",
    "mobilenet_v2",
    "param_groups",
    "register_model",
    "replace_head",
    "resnet18",
    "resnet34",
    "resnet50",
    "trainable_parameter_names",
    "unfreeze",
    "vgg11",
    "vgg11_bn",
    "vgg16",
    "vgg16_bn",
    "weights",
]
