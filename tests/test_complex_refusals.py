"""Complex inputs across the whole shared surface: every public name of ``ember``,
``ember.nn.functional`` and ``ember.Tensor`` that PyTorch 2.13 also has is called on complex64
tensors with a signature that both frameworks accept for float64 tensors, and must raise
exactly where PyTorch raises (with a message that says "complex"); where both compute, the
results must agree. ``KNOWN`` lists where Ember refuses and PyTorch computes.

The signature of a name is the first entry of ``SIGNATURES`` (or its ``SPECIAL`` maker) that
PyTorch and Ember both take on real inputs, so an error on the complex call is about the dtype,
not the arguments. Names that no signature fits are listed in ``NEEDS_ARGS`` (a test keeps the
list exact); random and state-changing names are left out (``SKIP``, with the reasons).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn.functional as F


def _words(text: str) -> list[str]:
    return text.split()


_RNG = np.random.default_rng(0)
_SHAPE = (3, 4)
_A = _RNG.uniform(-2, 2, _SHAPE) + 1j * _RNG.uniform(-2, 2, _SHAPE)
_B = _RNG.uniform(-2, 2, _SHAPE) + 1j * _RNG.uniform(-2, 2, _SHAPE)
_A4 = _RNG.uniform(-2, 2, (2, 3, 4, 5)) + 1j * _RNG.uniform(-2, 2, (2, 3, 4, 5))
_SQ = _RNG.uniform(-2, 2, (3, 3)) + 1j * _RNG.uniform(-2, 2, (3, 3)) + 3 * np.eye(3)


def _t(lib, a, complex_: bool):
    a = a.astype(np.complex64) if complex_ else a.real.astype(np.float64)
    return torch.tensor(a) if lib is torch else ember.tensor(a)


class _In:
    """Input makers for one framework and one kind (complex64, or the float64 real parts)."""

    def __init__(self, lib, complex_):
        self.lib, self.c = lib, complex_

    def x(self):
        return _t(self.lib, _A, self.c)

    def y(self):
        return _t(self.lib, _B, self.c)

    def x4(self):
        return _t(self.lib, _A4, self.c)

    def sq(self):
        return _t(self.lib, _SQ, self.c)

    def vec(self):
        return _t(self.lib, _A[0], self.c)


# Generic signatures, tried in order (``i``: the inputs of one framework and kind).
SIGNATURES = (
    lambda i: ((i.x(),), {}),
    lambda i: ((i.x(), i.y()), {}),
    lambda i: ((i.x(), 0.5), {}),
    lambda i: ((i.x(), 1), {}),
    lambda i: ((i.x(), i.y(), i.y()), {}),
    lambda i: ((i.x(), i.y(), 0.5), {}),
    lambda i: ((i.x(), 0.5, 0.5), {}),
    lambda i: ((i.x(), 1, 1), {}),
    lambda i: ((i.sq(),), {}),
    lambda i: ((i.sq(), i.sq()), {}),
    lambda i: ((i.x4(),), {}),
    lambda i: ((i.x4(), 2), {}),
    lambda i: (([i.x(), i.y()],), {}),
    lambda i: ((i.x(), (1, 0)), {}),
    lambda i: ((i.vec(), i.vec()), {}),
)


def _arr(i, a):
    return torch.tensor(a) if i.lib is torch else ember.tensor(a)


def _c(i, shape, seed):
    r = np.random.default_rng(seed)
    return _t(i.lib, r.uniform(-2, 2, shape) + 1j * r.uniform(-2, 2, shape), i.c)


def _idx(i, a):
    return _arr(i, np.asarray(a, np.int64))


def _mask(i):
    return _arr(i, np.array([[True, False, True, False]] * 3))


def _real_1d(i):
    r = np.array([-1.0, 0.0, 1.5])
    return torch.tensor(r) if i.lib is torch else ember.tensor(r)


# Names whose first generic fit is not the call that matters, or that none fits.
SPECIAL = {
    "bucketize": lambda i: ((i.x(), _real_1d(i)), {}),
    "searchsorted": lambda i: ((i.vec(), i.x()), {}),
    "isin": lambda i: ((i.x(), i.y()), {}),
    "prelu": lambda i: ((i.x4(), _t(i.lib, _A4[0, :, 0, 0], i.c)), {}),
    "rrelu": lambda i: ((i.x(),), {"training": False}),
    "clamp": lambda i: ((i.x(),), {"min": -0.5, "max": 0.5}),
    "clip": lambda i: ((i.x(),), {"min": -0.5, "max": 0.5}),
    "clamp_": lambda i: ((i.x(),), {"min": -0.5, "max": 0.5}),
    "clip_": lambda i: ((i.x(),), {"min": -0.5, "max": 0.5}),
    "norm": lambda i: ((i.x(),), {}),
    "cross_entropy": lambda i: ((i.x(), _idx(i, [0, 3, 1])), {}),
    "nll_loss": lambda i: ((i.x(), _idx(i, [0, 3, 1])), {}),
    "conv1d": lambda i: ((_c(i, (2, 3, 5), 1), _c(i, (4, 3, 2), 2)), {}),
    "conv2d": lambda i: ((i.x4(), _c(i, (2, 3, 2, 2), 3)), {}),
    "conv3d": lambda i: ((_c(i, (1, 2, 3, 3, 3), 4), _c(i, (2, 2, 2, 2, 2), 5)), {}),
    "conv_transpose1d": lambda i: ((_c(i, (2, 3, 5), 1), _c(i, (3, 2, 2), 2)), {}),
    "conv_transpose2d": lambda i: ((i.x4(), _c(i, (3, 2, 2, 2), 3)), {}),
    "layer_norm": lambda i: ((i.x(), (4,)), {}),
    "rms_norm": lambda i: ((i.x(), (4,)), {}),
    "batch_norm": lambda i: ((i.x(), _c(i, (4,), 6), _c(i, (4,), 7)), {}),
    "instance_norm": lambda i: ((_c(i, (2, 3, 5), 1),), {}),
    "embedding": lambda i: ((_idx(i, [0, 2, 1]), i.x()), {}),
    "bilinear": lambda i: ((i.x(), i.y(), _c(i, (2, 4, 4), 8)), {}),
    "pad": lambda i: ((i.x(), (1, 2)), {}),
    "pixel_shuffle": lambda i: ((_c(i, (1, 4, 2, 3), 9), 2), {}),
    "pixel_unshuffle": lambda i: ((i.x4(), 2), {}),
    "channel_shuffle": lambda i: ((_c(i, (1, 4, 2, 3), 9), 2), {}),
    "mv": lambda i: ((i.x(), _c(i, (4,), 1)), {}),
    "addmv": lambda i: ((_c(i, (3,), 2), i.x(), _c(i, (4,), 1)), {}),
    "addmm": lambda i: ((i.sq(), i.sq(), i.sq()), {}),
    "addr": lambda i: ((i.x(), _c(i, (3,), 1), _c(i, (4,), 2)), {}),
    "bmm": lambda i: ((_c(i, (2, 3, 4), 1), _c(i, (2, 4, 2), 2)), {}),
    "baddbmm": lambda i: ((_c(i, (2, 3, 2), 3), _c(i, (2, 3, 4), 1), _c(i, (2, 4, 2), 2)), {}),
    "addbmm": lambda i: ((_c(i, (3, 2), 3), _c(i, (2, 3, 4), 1), _c(i, (2, 4, 2), 2)), {}),
    "einsum": lambda i: (("ij,kj->ik", i.x(), i.y()), {}),
    "gather": lambda i: ((i.x(), 1, _idx(i, [[0, 1], [2, 3], [1, 1]])), {}),
    "take_along_dim": lambda i: ((i.x(), _idx(i, [[0, 1], [2, 3], [1, 1]]), 1), {}),
    "scatter": lambda i: ((i.x(), 1, _idx(i, [[0, 1], [2, 3], [1, 0]]), i.y()), {}),
    "scatter_add": lambda i: ((i.x(), 1, _idx(i, [[0, 1], [2, 3], [1, 0]]), i.y()), {}),
    "index_select": lambda i: ((i.x(), 1, _idx(i, [3, 0])), {}),
    "index_add": lambda i: ((i.x(), 0, _idx(i, [2, 0, 1]), i.y()), {}),
    "index_copy": lambda i: ((i.x(), 0, _idx(i, [2, 0, 1]), i.y()), {}),
    "index_fill": lambda i: ((i.x(), 1, _idx(i, [3, 0]), 0.5), {}),
    "masked_fill": lambda i: ((i.x(), _mask(i), 0.5), {}),
    # (a method whose function of the same name takes other arguments: kind-qualified keys)
    "Tensor.where": lambda i: ((i.x(), _mask(i), i.y()), {}),
    "Tensor.unfold": lambda i: ((i.x(), 1, 2, 1), {}),
    "masked_select": lambda i: ((i.x(), _mask(i)), {}),
    "masked_scatter": lambda i: ((i.x(), _mask(i), i.y()), {}),
    "take": lambda i: ((i.x(), _idx(i, [0, 5, 11])), {}),
    "put": lambda i: ((i.x(), _idx(i, [0, 5]), _c(i, (2,), 1)), {}),
    "index_put": lambda i: ((i.x(), (_idx(i, [0, 2]),), _c(i, (2, 4), 1)), {}),
    "narrow": lambda i: ((i.x(), 1, 1, 2), {}),
    "split_with_sizes": lambda i: ((i.x(), [1, 3], 1), {}),
    "unflatten": lambda i: ((i.x(), 1, (2, 2)), {}),
    "reshape": lambda i: ((i.x(), (4, 3)), {}),
    "view": lambda i: ((i.x(), 4, 3), {}),
    "expand": lambda i: ((_c(i, (3, 1), 1), 3, 4), {}),
    "broadcast_to": lambda i: ((_c(i, (3, 1), 1), (3, 4)), {}),
    "diagonal_scatter": lambda i: ((i.sq(), _c(i, (3,), 1)), {}),
    "select_scatter": lambda i: ((i.x(), _c(i, (4,), 1), 0, 1), {}),
    "matrix_power": lambda i: ((i.sq(), 2), {}),
    "vander": lambda i: ((_c(i, (3,), 1),), {}),
    "stft": lambda i: ((_c(i, (16,), 1), 8), {"return_complex": True}),
    "renorm": lambda i: ((i.x(), 2, 0, 1.0), {}),
    "mvlgamma": lambda i: ((i.x(), 2), {}),
    "polygamma": lambda i: ((1, i.x()), {}),
    "max_pool2d": lambda i: ((i.x4(), 2), {}),
    "max_pool3d": lambda i: ((_c(i, (1, 2, 4, 4, 4), 1), 2), {}),
    "lp_pool2d": lambda i: ((i.x4(), 2.0, 2), {}),
    "affine_grid": lambda i: ((_c(i, (1, 2, 3), 1), (1, 1, 2, 2)), {"align_corners": False}),
    "binary_cross_entropy": lambda i: ((i.x(), i.y()), {}),
    "gaussian_nll_loss": lambda i: ((i.x(), i.y(), i.x()), {}),
    "cosine_embedding_loss": lambda i: ((i.x(), i.y(), _arr(i, np.array([1.0, -1.0, 1.0]))), {}),
    "multi_margin_loss": lambda i: ((i.x(), _idx(i, [0, 3, 1])), {}),
    "one_hot": lambda i: ((i.x(),), {}),
    "new_full": lambda i: ((i.x(), (2, 2), 0.5), {}),
    "full": lambda i: (((2, 2), 1 + 2j), {}),
    "zeros": lambda i: ((2, 3), {"dtype": torch.complex64 if i.lib is torch else ember.complex64}),
    "view_as_real": lambda i: ((i.x(),), {}),
    "imag": lambda i: ((i.x(),), {}),
    "is_nonzero": lambda i: ((_c(i, (1,), 1),), {}),
    "multi_head_attention_forward": lambda i: (
        (i.x4()[0], i.x4()[0], i.x4()[0], 5, 1, _c(i, (15, 5), 1), None, None, None, False, 0.0)
        + (_c(i, (5, 5), 2), None),
        {},
    ),
    "dist": lambda i: ((i.x(), i.y()), {}),
    "logaddexp": lambda i: ((i.x(), i.y()), {}),
}

# Not called: randomness (values differ by design) and process state.
SKIP = {
    **dict.fromkeys(
        _words(
            "dropout alpha_dropout feature_alpha_dropout dropout1d dropout2d dropout3d "
            "gumbel_softmax bernoulli multinomial normal poisson rand_like randn_like "
            "randint_like random_ uniform_ normal_ exponential_ geometric_ cauchy_ "
            "log_normal_ bernoulli_ rrelu_ rrelu_with_noise"
        ),
        "random values",
    ),
    **dict.fromkeys(
        _words("empty_like new_empty empty_strided new_empty_strided"),
        "uninitialized values",
    ),
    **dict.fromkeys(
        _words(
            "manual_seed seed initial_seed set_rng_state get_rng_state set_default_dtype "
            "set_num_threads set_grad_enabled set_anomaly_enabled use_deterministic_algorithms "
            "set_printoptions save load"
        ),
        "process state or files",
    ),
    **dict.fromkeys(
        _words("no_grad enable_grad inference_mode"),
        "context managers (returned objects, not values)",
    ),
    **dict.fromkeys(
        _words(
            "data_ptr storage_offset untyped_storage register_hook retain_grad backward "
            "share_memory_ numpy tolist item __array__"
        ),
        "memory identity or autograd plumbing, not values",
    ),
}


def _names(kind):
    if kind == "ember":
        return [n for n in dir(ember) if not n.startswith("_") and hasattr(torch, n)]
    if kind == "F":
        return [n for n in dir(F) if not n.startswith("_") and hasattr(TF, n)]
    return [n for n in dir(ember.Tensor) if not n.startswith("__") and hasattr(torch.Tensor, n)]


def _fn(kind, lib, name):
    if kind == "ember":
        return getattr(lib, name)
    if kind == "F":
        return getattr(TF if lib is torch else F, name)

    def method(x, *args, **kw):
        m = getattr(x, name)
        return m(*args, **kw) if callable(m) else m

    return method


def _call(fn, maker, lib, complex_):
    args, kw = maker(_In(lib, complex_))
    # PyTorch's warn-once warnings (complex to real casts) fire every time while warn_always
    # is on, so the sweep does not use them up for tests that expect them later
    always = torch.is_warn_always_enabled()
    torch.set_warn_always(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kw)
    finally:
        torch.set_warn_always(always)


def _signature(kind, name):
    tf, ef = _fn(kind, torch, name), _fn(kind, ember, name)
    base = name[:-1] if kind == "Tensor" and name.endswith("_") else name
    special = SPECIAL.get(f"{kind}.{name}") or SPECIAL.get(name) or SPECIAL.get(base)
    makers = (special,) if special is not None else SIGNATURES
    for maker in makers:
        try:
            _call(tf, maker, torch, False)
            _call(ef, maker, ember, False)
        except Exception:  # noqa: BLE001  (any failure: this signature does not fit)
            continue
        return maker
    return None


def _flat(o):
    if isinstance(o, (tuple, list)):
        return [y for z in o for y in _flat(z)]
    return [o]


def _np(o):
    if isinstance(o, torch.Tensor):
        o = o.detach().resolve_conj().resolve_neg()
        return (o.float() if o.dtype == torch.bfloat16 else o).numpy()
    if isinstance(o, ember.Tensor):
        o = o.detach()
        return (o.float() if o.dtype is ember.bfloat16 else o).numpy()
    return o


def _same(name, t, e):
    tf, ef = _flat(t), _flat(e)
    assert len(tf) == len(ef), f"{name}: {len(ef)} results, torch {len(tf)}"
    for a, b in zip(tf, ef):
        a, b = _np(a), _np(b)
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            a, b = np.asarray(a), np.asarray(b)
            assert a.shape == b.shape, f"{name}: shape {b.shape}, torch {a.shape}"
            assert a.dtype == b.dtype, f"{name}: dtype {b.dtype}, torch {a.dtype}"
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5, err_msg=name)
        elif isinstance(a, torch.dtype):
            assert str(a) == f"torch.{b.name}", name
        elif isinstance(a, (torch.Size, tuple)):
            assert tuple(a) == tuple(b), name
        elif isinstance(a, (bool, int, float, complex)):
            both_nan = bool(np.isnan(a)) and bool(np.isnan(b))
            assert a == b or both_nan, f"{name}: {b!r}, torch {a!r}"


# Ember refuses where PyTorch computes (docs/api-differences.md): complex matrices in the
# LAPACK-backed linear algebra, which takes float32/float64 only (eig and eigvals aside).
_LINALG = _words(
    "cholesky cholesky_inverse cholesky_solve det inverse logdet matrix_exp pinverse qr "
    "slogdet svd triangular_solve"
)
KNOWN: dict[str, set[str]] = {"ember": set(_LINALG), "F": set(), "Tensor": set(_LINALG)}

# No generic signature fits these (checked: the test fails when one starts to fit):
# submodules, dtypes and classes; creation functions and process state (no tensor input);
# integer-only ops (bitwise, gcd, lcm, bincount: PyTorch refuses float tensors too);
# complex-only ops (imag, view_as_real, view_as_complex, istft: tests/test_complex.py and
# tests/test_fft_stft.py test them); and ops whose arguments need a SPECIAL maker (fractional
# and unpooling, ctc_loss, grid_sample, lu_solve ...).
NEEDS_ARGS: dict[str, set[str]] = {
    "ember": set(
        _words(
            "Generator Size arange are_deterministic_algorithms_enabled autograd backends "
            "bartlett_window bfloat16 bincount "
            "bitwise_and bitwise_left_shift bitwise_not bitwise_or bitwise_right_shift "
            "bitwise_xor blackman_window bool broadcast_shapes can_cast cdouble cfloat "
            "channels_last channels_last_3d contiguous_format memory_format preserve_format "
            "combinations compile complex128 complex64 conv_transpose3d cuda device distributed "
            "double dtype empty export eye fft finfo float float16 float32 float64 from_numpy gcd "
            "get_default_dtype get_num_threads half hamming_window hann_window imag "
            "iinfo index_reduce int int16 int32 int64 int8 is_anomaly_enabled is_grad_enabled "
            "is_deterministic_algorithms_warn_only_enabled "
            "is_inference_mode_enabled istft kaiser_window lcm linalg linspace logspace long "
            "lu_solve lu_unpack masked mvlgamma nn ones onnx ops optim pixel_unshuffle "
            "promote_types quantization rand randint randn random randperm scatter_reduce "
            "serialization short signal special tril_indices triu_indices uint8 unravel_index "
            "utils view_as_complex view_as_real"
        )
    ),
    "F": set(
        _words(
            "binary_cross_entropy conv_transpose3d ctc_loss embedding_bag fold "
            "fractional_max_pool2d fractional_max_pool2d_with_indices fractional_max_pool3d "
            "fractional_max_pool3d_with_indices gaussian_nll_loss grid_sample lp_pool3d "
            "max_unpool1d max_unpool2d max_unpool3d multilabel_margin_loss native_channel_shuffle "
            "one_hot pixel_unshuffle"
        )
    ),
    "Tensor": set(
        _words(
            "bincount bitwise_and bitwise_and_ bitwise_left_shift bitwise_left_shift_ bitwise_not "
            "bitwise_not_ bitwise_or bitwise_or_ bitwise_right_shift bitwise_right_shift_ "
            "bitwise_xor bitwise_xor_ cuda gcd gcd_ imag index_reduce istft lcm lcm_ "
            "lu_solve mvlgamma mvlgamma_ polygamma polygamma_ register_post_accumulate_grad_hook "
            "scatter_reduce"
        )
    ),
}


ALL = [(k, n) for k in ("ember", "F", "Tensor") for n in _names(k) if n not in SKIP]
CASES = [(k, n) for k, n in ALL if n not in NEEDS_ARGS[k]]


@pytest.mark.parametrize("kind,name", CASES, ids=[f"{k}.{n}" for k, n in CASES])
def test_complex_matches_torch(kind, name):
    maker = _signature(kind, name)
    assert maker is not None, f"{kind}.{name}: no signature fits; add a SPECIAL maker"
    tf, ef = _fn(kind, torch, name), _fn(kind, ember, name)
    try:
        want = _call(tf, maker, torch, True)
    except Exception as exc:  # noqa: BLE001  (whatever PyTorch raises, Ember must raise)
        want, terr = None, exc
    else:
        terr = None
    if name in KNOWN[kind]:
        assert terr is None, f"{kind}.{name} is listed in KNOWN but torch raises {terr!r}"
        with pytest.raises(TypeError, match="complex"):
            _call(ef, maker, ember, True)
        return
    if terr is not None:
        with pytest.raises((TypeError, RuntimeError, ValueError)) as info:
            _call(ef, maker, ember, True)
        assert "complex" in str(info.value), f"{kind}.{name}: {info.value}"
        return
    got = _call(ef, maker, ember, True)
    _same(f"{kind}.{name}", want, got)


def test_needs_args_is_exact():
    """Every listed name exists in both frameworks and still fits no signature (a name that
    starts to fit must move to the sweep)."""
    for kind, names in NEEDS_ARGS.items():
        shared = set(_names(kind))
        for name in sorted(names):
            assert name in shared, f"{kind}.{name} is listed in NEEDS_ARGS but not shared"
            fits = _signature(kind, name) is not None
            assert not fits, f"{kind}.{name} now fits a signature: remove it from NEEDS_ARGS"


def test_error_types_and_wording():
    z = ember.tensor([1 + 2j, -1j])
    with pytest.raises(TypeError, match="use sgn") as info:
        ember.sign(z)
    assert isinstance(info.value, RuntimeError)  # PyTorch raises RuntimeError subclasses
    with pytest.raises(TypeError, match="clamp is not supported for complex types"):
        z.clamp(min=0.0)
    with pytest.raises(TypeError, match=r"sort: complex tensors are not supported \(got complex64"):
        ember.sort(z)
    with pytest.raises(TypeError, match="relu"):
        ember.relu(z)
    with pytest.raises(RuntimeError, match="in-place abs"):
        z.clone().abs_()


@pytest.mark.parametrize(
    "call",
    [
        lambda z: z.relu_(),
        lambda z: z.clamp_(max=1.0),
        lambda z: z.sign_(),
        lambda z: z.round_(),
        lambda z: z.lt(0.5),
        lambda z: z > 0.5,
        lambda z: ember.maximum(z, ember.zeros(2)),  # a real operand promotes to complex
        lambda z: ember.nn.functional.gelu(z),
        lambda z: ember.nn.functional.softmax(z, -1),
        lambda z: ember.nn.functional.layer_norm(z, (2,)),
    ],
)
def test_refusals_leave_the_tensor_and_graph_untouched(call):
    z = ember.tensor([1 + 2j, -1j], requires_grad=True) * 1
    before = z.detach().numpy().copy()
    with pytest.raises((TypeError, RuntimeError), match="complex|in-place"):
        call(z)
    np.testing.assert_array_equal(z.detach().numpy(), before)


def test_real_inputs_keep_working():
    x = ember.tensor([-1.5, 0.5, 2.0])
    assert ember.relu(x).tolist() == [0.0, 0.5, 2.0]
    assert ember.erf(ember.tensor([0, 1])).dtype is ember.float32  # ints still promote
    assert ember.lt(x, 1).tolist() == [True, True, False]
    assert ember.round(ember.tensor([3])).tolist() == [3]
