"""Weight import and a local registry of weight files.

Readers never execute code from a file: PyTorch checkpoints go through a restricted
unpickler (tensors, storages and plain containers only), Keras ``.weights.h5`` and ONNX
initializers are read as arrays, safetensors through :func:`ember.load`. No network access.

Example:
    >>> import os, tempfile, torch, ember
    >>> from ember.models import weights
    >>> p = os.path.join(tempfile.mkdtemp(), "lenet.pth")
    >>> torch.save({k: torch.from_numpy(v.numpy()) for k, v in
    ...             ember.models.lenet5().state_dict().items()}, p)
    >>> weights.load_pretrained(ember.models.lenet5(), p, sha256=weights.sha256_file(p))
    <All keys matched successfully>
"""

from ._formats import (
    keras_h5_layer_names,
    keras_layer_order,
    load_keras_weights,
    load_onnx_initializers,
)
from ._registry import (
    INDEX_ENV,
    WeightsRegistry,
    default_registry,
    load_pretrained,
    read_weights,
    sha256_file,
    verify_file,
)
from ._torch_pickle import UnsafeCheckpointError, load_torch_checkpoint

__all__ = [
    "INDEX_ENV",
    "UnsafeCheckpointError",
    "WeightsRegistry",
    "default_registry",
    "keras_h5_layer_names",
    "keras_layer_order",
    "load_keras_weights",
    "load_onnx_initializers",
    "load_pretrained",
    "load_torch_checkpoint",
    "read_weights",
    "sha256_file",
    "verify_file",
]
