"""ember_lite: run an Ember saved model with NumPy alone (no ember, no other dependency).

It reads the saved-model directory written by ``ember.export.save`` (``saved_model.json``,
the graph files of ember's compiler, ``weights.safetensors``), checks every file against its
SHA-256, and runs the graph equation by equation through a table of NumPy primitives.

Example:
    >>> import ember_lite  # doctest: +SKIP
    >>> m = ember_lite.load("digits_cnn")  # doctest: +SKIP
    >>> m.signatures["serving_default"].inputs  # doctest: +SKIP
    [TensorSpec(name='x', dtype='float32', shape=(None, 1, 8, 8))]
    >>> m(images).argmax(1)  # doctest: +SKIP
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
