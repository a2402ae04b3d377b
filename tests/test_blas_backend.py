"""The BLAS behind Ember's float32 GEMM blocks: MKL (the ``mkl`` extra) or NumPy's OpenBLAS,
chosen by ``EMBER_BLAS``; every GEMM path gives the same values under each, and the same bits
on 1 and 2 threads."""

import json
import os
import subprocess
import sys

import pytest

from ember._env import env_choice
from ember.backends import _mkl

MKL_PRESENT = _mkl.load() is not None


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    full = dict(os.environ)
    full.pop("EMBER_BLAS", None)
    full.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=300
    )


def test_env_choice_names_the_variable_and_the_choices(monkeypatch):
    monkeypatch.setenv("EMBER_BLAS", " MKL ")
    assert env_choice("EMBER_BLAS", "auto", ("auto", "mkl", "openblas")) == "mkl"
    monkeypatch.setenv("EMBER_BLAS", "atlas")
    with pytest.raises(ValueError, match=r"EMBER_BLAS='atlas' must be one of auto, mkl, openblas"):
        env_choice("EMBER_BLAS", "auto", ("auto", "mkl", "openblas"))


_WHICH = (
    "from ember.backends.cpu import blas_backend, sgemm_address\n"
    "print(blas_backend(), sgemm_address() > 0)"
)


def test_ember_blas_chooses_the_backend():
    out = _run(_WHICH, EMBER_BLAS="openblas")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["openblas", "True"]
    out = _run(_WHICH, EMBER_BLAS="mkl")
    if MKL_PRESENT:
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["mkl", "True"]
    else:  # asked for explicitly: an error that says why, not a silent fallback
        assert out.returncode != 0
        assert "EMBER_BLAS=mkl, but MKL cannot be used" in out.stderr
    out = _run(_WHICH, EMBER_BLAS="atlas")
    assert out.returncode != 0 and "EMBER_BLAS='atlas' must be one of" in out.stderr


def test_auto_takes_mkl_on_intel_only():
    out = _run(_WHICH + "\nfrom ember.backends.cpu import cpu_vendor; print(cpu_vendor())")
    assert out.returncode == 0, out.stderr
    backend, has_address, vendor = out.stdout.split()
    assert has_address == "True"
    assert backend == ("mkl" if MKL_PRESENT and vendor == "GenuineIntel" else "openblas")


def test_mkl_runs_sequential_and_reports_its_version():
    if not MKL_PRESENT:
        assert _mkl.why_not()  # says why
        return
    found = _mkl.load()
    assert found is _mkl.load()  # loaded once
    assert found.version[:4].isdigit()
    get = found.lib.MKL_Get_Max_Threads
    assert get() == 1  # the sequential layer: no OpenMP pool of MKL's own


# Every float32 GEMM path that calls the block BLAS: row and column blocks (plain, transposed
# A, transposed B, with bias), batched heads read in place, convolution, the LSTM and fused
# attention, forward and backward. The plain products are compared with float64 references,
# everything is run on 1 and 2 threads, and the values go back for a comparison across
# backends.
_PATHS = r"""
import json, numpy as np, ember
import ember.nn.functional as F
from ember.backends.cpu import blas_backend
from ember.ops import _gemm as P

P._PAR_GEMM_MACS = P._PAR_GEMM_MACS_JIT = 1  # split even these small products
def run():
    rng = np.random.default_rng(0)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)
    products = {
        "rows": (f32(700, 96), f32(96, 300), f32(300)),
        "transposed_a": (f32(96, 700).T, f32(96, 50), None),
        "transposed_b": (f32(40, 96), f32(120, 96).T, None),
        "cols": (f32(40, 64), f32(64, 2000), None),
    }
    out = {name: P.gemm(a, b, bias=c) for name, (a, b, c) in products.items()}
    q, k = f32(3, 4, 33, 16), f32(3, 4, 33, 16)
    out["heads"] = P.matmul(q, k.transpose(0, 1, 3, 2))
    refs = {name: a.astype(np.float64) @ b + (0 if c is None else c)
            for name, (a, b, c) in products.items()}
    refs["heads"] = q.astype(np.float64) @ k.transpose(0, 1, 3, 2)
    x = ember.tensor(f32(6, 5, 12, 12), requires_grad=True)
    w = ember.tensor(f32(7, 5, 3, 3), requires_grad=True)
    F.conv2d(x, w, padding=1).square().sum().backward()
    out["conv_dx"], out["conv_dw"] = x.grad.numpy(), w.grad.numpy()
    ember.manual_seed(0)
    lstm = ember.nn.LSTM(10, 20)
    xs = ember.tensor(f32(9, 4, 10), requires_grad=True)
    lstm(xs)[0].sum().backward()
    out["lstm_dx"] = xs.grad.numpy()
    qq, kk, vv = (ember.tensor(f32(2, 3, 40, 16), requires_grad=True) for _ in range(3))
    F.scaled_dot_product_attention(qq, kk, vv, is_causal=True).square().sum().backward()
    out["sdpa_dq"] = qq.grad.numpy()
    return out, refs
ember.set_num_threads(1)
one, refs = run()
ember.set_num_threads(2)
two, _ = run()
errs = {n: float(np.abs(one[n] - ref).max() / np.abs(ref).max()) for n, ref in refs.items()}
print(json.dumps({
    "backend": blas_backend(),
    "errors": errs,
    "same": {name: bool(np.array_equal(one[name], two[name])) for name in one},
    "values": {name: np.asarray(v, np.float64).ravel()[:3000].tolist() for name, v in one.items()},
}))
"""


@pytest.fixture(scope="module")
def per_backend():
    results = {}
    for backend in ("openblas", "mkl") if MKL_PRESENT else ("openblas",):
        out = _run(_PATHS, EMBER_BLAS=backend)
        assert out.returncode == 0, out.stderr[-3000:]
        results[backend] = json.loads(out.stdout.strip().splitlines()[-1])
    return results


@pytest.mark.parametrize("backend", ["openblas", "mkl"])
def test_every_gemm_path_is_accurate_and_thread_count_invariant(per_backend, backend):
    if backend not in per_backend:
        pytest.skip("the mkl package is not installed here (pip install 'ember[mkl]')")
    got = per_backend[backend]
    assert got["backend"] == backend
    assert got["errors"] and max(got["errors"].values()) < 1e-5, got["errors"]
    assert all(got["same"].values()), [k for k, v in got["same"].items() if not v]


def test_the_backends_agree(per_backend):
    """MKL's blocks give OpenBLAS's values up to float32 rounding on every path."""
    import numpy as np

    if "mkl" not in per_backend:
        pytest.skip("the mkl package is not installed here (pip install 'ember[mkl]')")
    ref, got = per_backend["openblas"]["values"], per_backend["mkl"]["values"]
    assert set(ref) == set(got)
    for name in ref:
        r, g = np.array(ref[name]), np.array(got[name])
        assert np.abs(g - r).max() / np.abs(r).max() < 2e-5, name
