"""The first compiled-kernel call of a process does not import ``scipy.linalg`` (numba's
import-time BLAS probe is answered from whether SciPy is installed), and numba code that does
use ``np.dot`` still gets SciPy's BLAS."""

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("numba", reason="the compiled kernels need numba (the [fast] extra)")

_PROBE = textwrap.dedent(
    """
    import sys
    import numpy as np
    from ember.backends import jit

    k = jit.get("row_sums")
    a = np.ones((4, 64), np.float32)
    out = np.empty(4, np.float32)
    k(a, out, 1.0)
    assert out.tolist() == [64.0] * 4, out
    print("linalg", "scipy.linalg" in sys.modules)

    import numba

    @numba.njit
    def dot(x, y):
        return np.dot(x, y)

    x = np.arange(6.0).reshape(2, 3)
    print("dot", dot(x, x.T).tolist() == (x @ x.T).tolist())
    """
)


def test_first_kernel_skips_scipy_linalg_and_np_dot_still_works():
    r = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=300, check=False
    )
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.split()
    assert "linalg" in r.stdout and lines[lines.index("linalg") + 1] == "False", r.stdout
    assert lines[lines.index("dot") + 1] == "True", r.stdout
