"""Start-up cost and process-wide effects of ``import ember``.

``import ember`` must not load the optional packages (bfloat16's ``ml_dtypes`` included: it
loads on first use), and every process-wide effect listed in README ("What import ember
changes in your process") must switch off with its variable, spelled the way users spell booleans.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ember._env import env_flag, env_int

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = (
    "ml_dtypes",
    "numba",
    "yaml",
    "tqdm",
    "torch",
    "h5py",
    "PIL",
    "tensorboard",
    "safetensors",
    "sklearn",
    "lmdb",
    "threadpoolctl",
)
LAZY_SUBPACKAGES = ("ember.keras", "ember.train", "ember.data", "ember.metrics", "ember.summary")
OPT_OUTS = (
    "EMBER_KEEP_BLAS_THREADS",
    "EMBER_MALLOC_TUNING",
    "EMBER_JIT",
    "EMBER_JIT_CACHE",
)


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], env=e, capture_output=True, text=True, cwd=ROOT
    )


# -- the parser ---------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", ["1", "true", "True", "YES", " on ", "y", "t"])
def test_env_flag_true_words(monkeypatch, raw):
    monkeypatch.setenv("EMBER_TEST_FLAG", raw)
    assert env_flag("EMBER_TEST_FLAG", default=False) is True


@pytest.mark.parametrize("raw", ["0", "false", "False", "NO", " off", "n", "f"])
def test_env_flag_false_words(monkeypatch, raw):
    monkeypatch.setenv("EMBER_TEST_FLAG", raw)
    assert env_flag("EMBER_TEST_FLAG", default=True) is False


@pytest.mark.parametrize("default", [True, False])
def test_env_flag_unset_or_empty_is_the_default(monkeypatch, default):
    monkeypatch.delenv("EMBER_TEST_FLAG", raising=False)
    assert env_flag("EMBER_TEST_FLAG", default) is default
    monkeypatch.setenv("EMBER_TEST_FLAG", "  ")
    assert env_flag("EMBER_TEST_FLAG", default) is default


@pytest.mark.parametrize("raw", ["maybe", "2", "-1", "keep", "truee"])
def test_env_flag_rejects_other_values_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv("EMBER_TEST_FLAG", raw)
    with pytest.raises(ValueError, match=r"EMBER_TEST_FLAG=.*not a boolean.*1/0"):
        env_flag("EMBER_TEST_FLAG", default=True)


def test_env_int(monkeypatch):
    monkeypatch.delenv("EMBER_TEST_INT", raising=False)
    assert env_int("EMBER_TEST_INT", 7) == 7
    monkeypatch.setenv("EMBER_TEST_INT", " 12 ")
    assert env_int("EMBER_TEST_INT", 7) == 12
    for bad in ("x", "1.5", "0"):
        monkeypatch.setenv("EMBER_TEST_INT", bad)
        with pytest.raises(ValueError, match=r"EMBER_TEST_INT=.*integer >= 1"):
            env_int("EMBER_TEST_INT", 7)
    monkeypatch.setenv("EMBER_TEST_INT", "0")
    assert env_int("EMBER_TEST_INT", 7, minimum=0) == 0


# -- start-up -----------------------------------------------------------------------------------
def test_import_loads_no_optional_package_and_no_high_level_api():
    code = (
        "import sys, ember\n"
        f"print([m for m in {EXTRAS + LAZY_SUBPACKAGES!r} if m in sys.modules])\n"
        "ember.keras, ember.data  # the lazy subpackages load on attribute access\n"
        "print(sorted(m for m in ('ember.keras', 'ember.data') if m in sys.modules))\n"
    )
    r = _python(code)
    assert r.returncode == 0, r.stderr
    loaded, lazy = r.stdout.splitlines()
    assert loaded == "[]", f"import ember loaded {loaded}"
    assert lazy == "['ember.data', 'ember.keras']"


def test_bfloat16_loads_ml_dtypes_on_first_use():
    import torch

    code = (
        "import sys, ember\n"
        "d = ember.bfloat16\n"
        "assert d.itemsize == 2 and d.is_floating_point and 'ml_dtypes' not in sys.modules\n"
        "x = ember.tensor([1.5, -2.25, 3.0], dtype=ember.bfloat16, requires_grad=True)\n"
        "(x * x).sum().backward()\n"
        "print(x.dtype, x.grad.dtype, x.grad.float().tolist(), 'ml_dtypes' in sys.modules)\n"
    )
    r = _python(code)
    assert r.returncode == 0, r.stderr
    t = torch.tensor([1.5, -2.25, 3.0], dtype=torch.bfloat16, requires_grad=True)
    (t * t).sum().backward()
    want = f"ember.bfloat16 ember.bfloat16 {t.grad.float().tolist()} True"
    assert r.stdout.strip() == want


# -- process-wide effects and their opt-outs ------------------------------------------------------
_PROBE = r"""
import ctypes, json, sys, warnings
out = {}
try:
    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
except (OSError, AttributeError):
    libc = None
import numpy


def blas_count():  # read before ember's import, with the same look-up Ember uses
    with open("/proc/self/maps") as f:
        paths = [ln.split()[-1] for ln in f if "openblas" in ln.lower()]
    for path in paths[:1]:
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                     "scipy_openblas_get_num_threads", "openblas_get_num_threads"):
            if hasattr(lib, name):
                return getattr(lib, name)()
    return None


try:
    out["blas_before"] = blas_count()
except OSError:
    out["blas_before"] = None
import ember
from ember.backends import jit
from ember.ops import _parallel
get = _parallel._get_blas_threads
out["blas"] = get() if get else None
if get:  # Ember's own block loops run BLAS on one thread whatever the process's setting
    seen = []
    _parallel.parallel_for(4, 1, lambda a, b, slot: seen.append(get()), work=1 << 40)
    out["blas_in_loop"] = max(seen)
    out["blas_after_loop"] = get()
if libc is not None:  # a 4 MiB block: mmapped under glibc's defaults, heap under Ember's
    before = libc.mallinfo2().hblks
    p = libc.malloc(4 << 20)
    out["mmapped"] = libc.mallinfo2().hblks - before
    libc.free(p)
out["filters"] = sum("ember" in str(getattr(f[3], "pattern", f[3])) for f in warnings.filters)
out["jit"] = jit._enabled
if not jit._enabled:  # the NumPy paths run and numba is never imported
    ember.relu(ember.ones(8))
    out["jit"] = jit.get("relu") is not None or "numba" in sys.modules
out["jit_cache"] = jit._cache
print(json.dumps(out))
"""


def _effects(**env: str) -> dict:
    r = _python(_PROBE, OPENBLAS_NUM_THREADS="2", **env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    if out["blas"] is not None:  # OpenBLAS caps the count at the CPUs it sees
        assert out["blas_before"] is not None and out["blas_before"] >= 1
    return out


# Ember installs no warning filter: NumPy floating-point warnings are silenced in the kernels.
DEFAULT = {"blas": 1, "mmapped": 0, "filters": 0, "jit": True, "jit_cache": True}
OPTED_OUT = {"blas": "before", "mmapped": 1, "filters": 0, "jit": False, "jit_cache": False}
DEFAULT.update(blas_in_loop=1, blas_after_loop=1)
OPTED_OUT.update(blas_in_loop=1, blas_after_loop="before")  # "before": the count before import


def _check(got: dict, want: dict, env: dict):
    for k, v in want.items():
        if v == "before":
            v = got["blas_before"]
        if k in got and got[k] is not None:
            assert got[k] == v, f"{k}: got {got[k]}, expected {v} with {env}"


def test_defaults_apply_the_documented_effects():
    _check(_effects(), DEFAULT, {})


@pytest.mark.parametrize(
    "words",
    [("1", "0", "0", "0"), ("yes", "false", "off", "False")],
    ids=["digits", "words"],
)
def test_each_opt_out_switches_its_effect_off(words):
    env = dict(zip(OPT_OUTS, words))
    _check(_effects(**env), OPTED_OUT, env)


def test_zero_never_means_keep():
    env = dict(zip(OPT_OUTS, ("0", "1", "true", "on")))
    _check(_effects(**env), DEFAULT, env)


def test_a_bad_value_fails_the_import_naming_the_variable():
    r = _python("import ember", EMBER_KEEP_BLAS_THREADS="sometimes")
    assert r.returncode != 0
    assert "EMBER_KEEP_BLAS_THREADS='sometimes' is not a boolean" in r.stderr
    r = _python("import ember", EMBER_NUM_THREADS="many")
    assert r.returncode != 0 and "EMBER_NUM_THREADS='many'" in r.stderr
