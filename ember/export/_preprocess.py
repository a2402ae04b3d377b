"""The ``preprocessing`` entry of a saved model's manifest.

``ember export`` of a trained run records the input form the run's data had
(``{"kind": "ember.cli", ...}``: the dataset, the raw value range and its scale, the
deterministic ``data.transforms`` of the config, the sample shape and dtype, the vocabulary
of token models). :func:`apply` turns raw inputs into the model's input form from it, the way
``ember predict`` does. Any other dict is kept as metadata for the user or a server.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["CLI_KIND", "apply", "from_run"]

CLI_KIND = "ember.cli"


def from_run(cfg: dict[str, Any], spec: dict[str, Any], input_name: str) -> dict[str, Any]:
    """The preprocessing entry of a model trained by ``ember train`` (``cfg``: the resolved
    config, ``spec``: the input spec saved with the model)."""
    from ..cli.datasets import _is_random
    from ..cli.names import parse_item

    transforms = [
        t for t in cfg["data"].get("transforms") or () if not _is_random(parse_item(t)[0])
    ]
    return {
        "kind": CLI_KIND,
        "input": input_name,
        "dataset": spec.get("dataset"),
        "shape": list(spec["shape"]),
        "dtype": spec["dtype"],
        "num_classes": spec.get("num_classes"),
        "raw": spec.get("raw"),
        "transforms": transforms,
        "vocab": spec.get("vocab"),
        "level": spec.get("level"),
    }


def apply(pre: dict[str, Any] | None, x: Any, where: str) -> np.ndarray:
    if pre is None:
        return np.asarray(x)
    if pre.get("kind") != CLI_KIND:
        raise ValueError(
            f"{where}: this model's preprocessing is metadata only ({sorted(pre)}); apply it "
            "before calling the model"
        )
    from ..cli.inputs import prepare_inputs

    return prepare_inputs(
        np.asarray(x), pre, {"data": {"transforms": pre.get("transforms") or []}}, where
    )
