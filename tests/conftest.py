"""Shared test helpers (keep small and stable: other test files import from here).

``assert_close_torch(ember_tensor, torch_tensor, rtol, atol)`` compares values, shape and
(optionally) dtype; ``to_torch`` / ``from_torch`` move data across frameworks; the
hypothesis profile keeps property tests fast.
"""

from __future__ import annotations

import numpy as np
import pytest

try:
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "ember",
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    settings.load_profile("ember")
except ImportError:  # pragma: no cover
    pass


def _np(x):
    """A float64/int NumPy copy of an ember Tensor, torch Tensor, array or scalar."""
    import ember

    if isinstance(x, ember.Tensor):
        d = x.detach()._data
        return d.astype(np.float64) if d.dtype.kind in "fV" else np.asarray(d)
    try:
        import torch

        if isinstance(x, torch.Tensor):
            x = x.detach()
            if x.dtype in (torch.bfloat16, torch.float16):
                x = x.float()
            return x.numpy().astype(np.float64) if x.is_floating_point() else x.numpy()
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(x)


def to_torch(x, requires_grad=None):
    """An ember Tensor (or array) as a torch tensor with the same dtype and values."""
    import torch

    import ember

    if isinstance(x, ember.Tensor):
        name = x.dtype.name
        d = x.detach()._data
        if name == "bfloat16":
            t = torch.from_numpy(d.astype(np.float32).copy()).to(torch.bfloat16)
        else:
            t = torch.from_numpy(np.array(d, copy=True))
        rg = x.requires_grad if requires_grad is None else requires_grad
        return t.requires_grad_(rg) if t.is_floating_point() else t
    return torch.as_tensor(x)


def from_torch(t, requires_grad=False):
    import torch

    import ember

    t = t.detach()
    if t.dtype == torch.bfloat16:
        return ember.tensor(t.float().numpy(), dtype=ember.bfloat16, requires_grad=requires_grad)
    return ember.tensor(t.numpy().copy(), requires_grad=requires_grad)


def assert_close_torch(actual, expected, rtol=1e-5, atol=1e-6, check_dtype=True, msg=""):
    """Assert an ember result equals a torch (or NumPy) reference: shape, dtype, values."""
    import ember

    if actual is None or expected is None:
        assert actual is None and expected is None, (
            f"{msg}: one of the results is None (ember {actual!r}, reference {expected!r})"
        )
        return
    a, e = _np(actual), _np(expected)
    assert tuple(a.shape) == tuple(e.shape), f"{msg}: shape {a.shape} != {e.shape}"
    if check_dtype and isinstance(actual, ember.Tensor):
        import torch

        if isinstance(expected, torch.Tensor):
            en = str(expected.dtype).replace("torch.", "")
            assert actual.dtype.name == en, f"{msg}: dtype {actual.dtype.name} != {en}"
    if a.dtype.kind in "biu" and e.dtype.kind in "biu":
        np.testing.assert_array_equal(a, e, err_msg=msg)
    else:
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, equal_nan=True, err_msg=msg)


@pytest.fixture
def seeded():
    """Seed ember and NumPy's global RNG deterministically for a test."""
    import ember

    ember.manual_seed(0)
    np.random.seed(0)
    return np.random.default_rng(0)


@pytest.fixture(params=["AuthenticAMD", "GenuineIntel"])
def cpu_vendor(request, monkeypatch):
    """Run a test under each CPU vendor's kernel choices (the small-matrix GEMM tile rules
    differ: :func:`ember.backends.kernels_blas._tiles_pay`) with the GEMM blocks on
    OpenBLAS, whose rules they are; yields the vendor string."""
    from ember.backends import cpu

    monkeypatch.setattr(cpu, "_VENDOR", [request.param])
    monkeypatch.setattr(cpu, "_BACKEND", ["openblas"])
    return request.param


def packed_gemm_possible() -> bool:
    """Whether this machine can run Ember's packed AVX-512 float32 GEMM (numba's parallel
    layer and an AVX-512 CPU), whatever the vendor rule says."""
    from ember.backends import jit

    if not jit.parallel_available():
        return False
    from llvmlite import binding as ll

    return "+avx512f" in ll.get_host_cpu_features().flatten().split(",")


@pytest.fixture(params=["openblas", "packed", "mkl"])
def gemm_kernel(request, monkeypatch):
    """Run a test with float32 GEMMs on OpenBLAS, on Ember's packed micro-kernel
    (:func:`ember.ops._parallel.packed_gemm_available`) and on MKL's blocks (the ``mkl``
    extra: :func:`ember.backends.cpu.blas_backend`, with the micro-kernel where it keeps it);
    yields the kernel's name."""
    from ember.backends import _mkl, cpu
    from ember.ops import _gemm as P

    if request.param == "packed" and not packed_gemm_possible():
        pytest.skip("the packed float32 GEMM needs AVX-512 and numba's OpenMP/TBB layer")
    if request.param == "mkl" and _mkl.load() is None:
        pytest.skip(f"MKL cannot be used here: {_mkl.why_not()}")
    monkeypatch.setattr(cpu, "_BACKEND", ["mkl" if request.param == "mkl" else "openblas"])
    packed = request.param == "packed" or (request.param == "mkl" and packed_gemm_possible())
    monkeypatch.setattr(P, "_PACKED", [packed])
    monkeypatch.setattr(P, "_PACKED_GEMMS", [packed])  # (AMD CPUs: tested as on Intel)
    return request.param


@pytest.fixture(autouse=True)
def _dispatch_state_is_restored():
    """Fail the test that leaves grad mode, inference mode, anomaly detection or a tracer
    switched on in the main thread (the next tests would fail for no reason of their own);
    then restore the defaults."""
    from ember.ops._core import _state

    yield
    left = {
        "grad_enabled": _state.grad_enabled is not True,
        "inference": _state.inference is not False,
        "anomaly": _state.anomaly is not False,
        "tracer": _state.tracer is not None,
    }
    _state.grad_enabled, _state.inference, _state.anomaly, _state.tracer = True, False, False, None
    leaked = [name for name, bad in left.items() if bad]
    assert not leaked, f"the test left dispatch state changed: {leaked}"
