"""ember_lite: run an Ember saved model with NumPy alone (no ember, no other dependency).

It reads the saved-model directory written by ``ember.export.save`` (``saved_model.json``,
the graph files of ember's compiler, ``weights.safetensors``), checks every file against its
SHA-256, and runs the graph equation by equation through a table of NumPy primitives.

Example (a model saved by ember; running it needs only NumPy and ember_lite):
    >>> import os, tempfile, numpy as np, ember, ember.export
    >>> net = ember.nn.Sequential(ember.nn.Conv2d(1, 4, 3), ember.nn.Flatten(),
    ...                           ember.nn.Linear(144, 10))
    >>> d = ember.export.save(net.eval(), os.path.join(tempfile.mkdtemp(), "cnn"),
    ...                       ember.randn(1, 1, 8, 8))
    >>> import ember_lite
    >>> m = ember_lite.load(d)
    >>> m.signatures["serving_default"].inputs
    [TensorSpec(name='input', dtype='float32', shape=(None, 1, 8, 8))]
    >>> m(np.zeros((3, 1, 8, 8), np.float32)).shape
    (3, 10)
"""

from __future__ import annotations

from ._errors import LiteFormatError, UnsupportedPrimitiveError
from ._model import Model, Signature, TensorSpec, load
from ._prims import PRIMS

__all__ = [
    "PRIMS",
    "LiteFormatError",
    "Model",
    "Signature",
    "TensorSpec",
    "UnsupportedPrimitiveError",
    "load",
]
__version__ = "0.1.0"
