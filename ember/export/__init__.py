"""Saved models: a versioned directory that runs without the code that defined the model.

``ember.export.save(model, dir, example_inputs)`` traces the model (eval mode, symbolic
batch axis) into ember's graph IR and writes::

    dir/
      saved_model.json              manifest: format, version, signatures, file hashes
      graph.serving_default.json    one graph per signature (ember.compiler.serialize)
      graph.serving_default.json.bin
      weights.safetensors           parameters and buffers by name, shared by signatures

``ember.export.load(dir)`` verifies every file (SHA-256 and size, format and version, no
unlisted files, every weight present with its shape and dtype) and gives a
:class:`SavedModel` whose signatures run eagerly on ember ops (differentiable), with
``sig.run({name: array})`` for NumPy callers such as a server. ``ember_lite`` reads the same
directory with NumPy alone.

Example:
    >>> import os, tempfile, numpy as np, ember, ember.export
    >>> net = ember.nn.Sequential(ember.nn.Linear(4, 8), ember.nn.ReLU(), ember.nn.Linear(8, 2))
    >>> d = ember.export.save(net, os.path.join(tempfile.mkdtemp(), "net"), ember.randn(3, 4))
    >>> m = ember.export.load(d)
    >>> x = ember.randn(5, 4)
    >>> bool(np.allclose(m(x).numpy(), net(x).detach().numpy(), atol=1e-6))
    True
"""

from ._format import FORMAT, VERSION, SavedModelError, TensorSpec
from ._load import SavedModel, Signature, load
from ._save import save

__all__ = [
    "FORMAT",
    "VERSION",
    "SavedModel",
    "SavedModelError",
    "Signature",
    "TensorSpec",
    "load",
    "save",
]
