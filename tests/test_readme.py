"""The ```python blocks of README.md's tour run as written (with small data)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(
    r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.DOTALL | re.MULTILINE
)


def _namespace(code: str) -> dict:
    """Names the README leaves to the reader (``x_train``/``y_train``): a slice of Digits."""
    ns = {"__name__": "__readme__"}
    if "x_train" in code:
        pytest.importorskip("sklearn", reason="the Keras block trains on Digits (scikit-learn)")
        from ember.data.datasets import Digits

        digits = Digits(train=True, flatten=True)
        ns["x_train"], ns["y_train"] = digits.data[:256], digits.targets[:256]
    return ns


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(code):
    import ember

    ember.manual_seed(0)
    # NOTE: small data: the README's 20 epochs become 2 (the call is otherwise as written)
    code = code.replace("epochs=20", "epochs=2")
    ns = _namespace(code)
    exec(compile(code, str(README), "exec"), ns)  # noqa: S102  (running the README is the point)
    if "model.fit(" in code:
        assert ns["model"].built
