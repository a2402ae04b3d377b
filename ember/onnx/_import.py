"""``ember.onnx.load``: an ONNX model as an ember module that runs its nodes eagerly.

Each ONNX operator maps to ember ops (the table :data:`IMPORTS`), so the module is
differentiable like any other; float initializers become parameters (fine-tuning works),
the others buffers. It covers the operators :func:`ember.onnx.export` writes; a file using
others gets one error listing them all.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import nn
from .._creation import tensor
from .._tensor import Tensor
from ..nn import functional as F
from ._deps import require

__all__ = ["IMPORTS", "ONNXModule", "load"]

Op = Callable[..., Any]
IMPORTS: dict[str, Op] = {}


def imports(*names: str) -> Callable[[Op], Op]:
    def deco(fn: Op) -> Op:
        for n in names:
            IMPORTS[n] = fn
        return fn

    return deco


def _host(t: Any) -> np.ndarray:
    """A value as a NumPy array: host values (shapes, constants) as they are, tensors read."""
    if isinstance(t, Tensor):
        return np.asarray(t.numpy())
    return np.asarray(t)  # an array, or a list from an attribute (axes before opset 13)


def _ints(t: Any) -> list[int]:
    return [int(v) for v in _host(t).reshape(-1)]


# Inputs read as Python numbers (shapes, axes, sizes); a host value there is passed as it is,
# so a graph that computes a shape from ``Shape`` never reads a tensor back under
# ``ember.compile``. Every other input of an op that mixes host values and tensors gets its
# host values as constant tensors.
HOST_ARGS: dict[str, tuple[int, ...]] = {
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "Slice": (1, 2, 3, 4), "Squeeze": (1,),
    "Unsqueeze": (1,), "Split": (1,), "Pad": (1, 3), "ConstantOfShape": (0,),
    "Range": (0, 1, 2), "TopK": (1,), "OneHot": (1,), "CumSum": (1,), "CumProd": (1,),
    "Trilu": (1,), "Dropout": (1, 2), "Resize": (1, 2, 3), "Upsample": (1,),
    "GatherND": (1,), "ScatterND": (1,), "Compress": (1,), "ReverseSequence": (1,),
    **{f"Reduce{k}": (1,) for k in (
        "Sum", "Mean", "Max", "Min", "Prod", "LogSumExp", "L1", "L2", "SumSquare", "LogSum",
    )},
}  # fmt: skip
# never evaluated on the host: random, or with subgraphs
# (QDQ nodes on constant weights run in ember: onnx's reference lacks DequantizeLinear
# before opset 19)
_NOT_HOST = {"Dropout", "Bernoulli", "RandomNormalLike", "RandomUniformLike", "Multinomial",
             "If", "Loop", "Scan", "QuantizeLinear", "DequantizeLinear"}  # fmt: skip


def _np_dtype(onnx: Any, to: int) -> np.dtype:
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(to))


class ONNXModule(nn.Module):
    """An ONNX graph run node by node with ember ops (see :func:`load`)."""

    def __init__(self, model: Any):
        super().__init__()
        onnx = require("onnx")
        self._onnx = onnx
        g = model.graph
        # operators whose inputs/attributes changed between opsets read this
        self.opset = next(
            (int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 0
        )
        from ._import_function import has_function

        missing = sorted(
            {
                n.op_type
                for n in g.node
                if n.op_type not in IMPORTS and not has_function(n, self.opset)
            }
        )
        if missing:
            raise NotImplementedError(
                f"ember.onnx.load: {len(missing)} ONNX operator(s) have no ember mapping: "
                f"{', '.join(missing)}"
            )
        self.params = nn.ParameterDict()
        self._consts: dict[str, Any] = {}
        self._param_keys: dict[str, str] = {}
        for init in g.initializer:
            arr = onnx.numpy_helper.to_array(init).copy()
            if arr.dtype.kind == "f" and not init.name.startswith("const_"):
                key = init.name.replace(".", "__")
                self.params[key] = nn.Parameter(tensor(arr))
                self._param_keys[init.name] = key
            elif arr.dtype.kind == "f":
                self._consts[init.name] = tensor(arr)
            else:  # integer and bool initializers are host values (shapes, axes, indices)
                self._consts[init.name] = arr
        inits = {i.name for i in g.initializer}
        self.input_names = [i.name for i in g.input if i.name not in inits]
        self.output_names = [o.name for o in g.output]
        self._opset_imports = list(model.opset_import)
        self._host_reps: dict[tuple, Any] = {}
        self._nodes = self._prepare(g.node)

    def _prepare(self, nodes: Any) -> list[tuple]:
        return [
            (
                n.op_type,
                list(n.input),
                list(n.output),
                {a.name: self._attr(a) for a in n.attribute},
                n,
            )
            for n in nodes
        ]

    def _attr(self, a: Any) -> Any:
        v = self._onnx.helper.get_attribute_value(a)
        if isinstance(v, bytes):
            return v.decode()
        if isinstance(v, list) and v and isinstance(v[0], bytes):
            return [s.decode() for s in v]
        if isinstance(v, self._onnx.TensorProto):
            return self._onnx.numpy_helper.to_array(v)
        return v

    def forward(self, *inputs: Any) -> Any:
        if len(inputs) != len(self.input_names):
            raise TypeError(
                f"this ONNX model takes {len(self.input_names)} inputs "
                f"({', '.join(self.input_names)}), got {len(inputs)}"
            )
        env: dict[str, Any] = dict(self._consts)
        for name, key in self._param_keys.items():
            env[name] = self.params[key]
        for name, x in zip(self.input_names, inputs):
            env[name] = _as_value(x)
        self._run(self._nodes, env)
        out = [tensor(v) if isinstance(v, np.ndarray) else v for v in
               (env[n] for n in self.output_names)]  # fmt: skip
        return out[0] if len(out) == 1 else tuple(out)

    def _run(self, nodes: list[tuple], env: dict[str, Any]) -> None:
        for op, ins, outs, attrs, proto in nodes:
            args = [env[n] if n else None for n in ins]
            self._n_out = len(outs)  # Split without sizes splits into as many parts as outputs
            present = [a for a in args if a is not None]
            if present and op not in _NOT_HOST and all(isinstance(a, np.ndarray) for a in present):
                res = self._on_host(proto, ins, args)
            elif op == "If":
                res = self._if(args[0], attrs, env)
            elif op not in IMPORTS:  # an operator defined by a function body: run the body
                from ._import_function import run_function

                res = run_function(self, proto, args)
            else:
                keep = HOST_ARGS.get(op, ())
                args = [
                    tensor(a) if isinstance(a, np.ndarray) and k not in keep else a
                    for k, a in enumerate(args)
                ]
                res = IMPORTS[op](self, *args, **attrs)
            res = res if isinstance(res, (list, tuple)) else [res]
            for n, r in zip(outs, res):
                if n:
                    env[n] = r

    def _if(self, cond: Any, attrs: dict[str, Any], env: dict[str, Any]) -> list[Any]:
        """``If``: the branch the condition picks runs in a scope that sees the outer names
        (a tensor condition is read, so ``ember.compile`` breaks the graph there)."""
        branch = attrs["then_branch"] if bool(_host(cond).reshape(-1)[0]) else attrs["else_branch"]
        key = ("if", id(branch))
        nodes = self._host_reps.get(key)
        if nodes is None:
            nodes = self._host_reps[key] = self._prepare(branch.node)
        scope = dict(env)
        for init in branch.initializer:
            scope[init.name] = self._onnx.numpy_helper.to_array(init)
        self._run(nodes, scope)
        return [scope[o.name] for o in branch.output]

    def _on_host(self, node: Any, names: list[str], args: list[Any]) -> list[np.ndarray]:
        """A node on host values only (a shape computation): onnx's NumPy reference."""
        key = (id(node), *(a.dtype.str if a is not None else "" for a in args))
        rep = self._host_reps.get(key)
        if rep is None:
            helper = self._onnx.helper
            vi = [
                helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), None)
                for n, a in zip(names, args)
                if n
            ]
            outs = [helper.make_empty_tensor_value_info(n) for n in node.output if n]
            g = helper.make_graph([node], "host", vi, outs)
            model = helper.make_model(g, opset_imports=self._opset_imports)
            from onnx.reference import ReferenceEvaluator

            rep = self._host_reps[key] = ReferenceEvaluator(model)
        feeds = {n: a for n, a in zip(names, args) if n}
        res = [np.asarray(r) for r in rep.run(None, feeds)]
        by_name = dict(zip([n for n in node.output if n], res))
        return [by_name.get(n) for n in node.output]


def _as_value(x: Any) -> Any:
    """An input as the graph holds it: a tensor, a list of them (an ONNX sequence) or None
    (an empty optional)."""
    if x is None or isinstance(x, Tensor):
        return x
    if isinstance(x, list):
        return [_as_value(v) for v in x]
    return tensor(np.asarray(x))


def load(path: str | os.PathLike | Any) -> ONNXModule:
    """An ONNX file (or ``ModelProto``) as an ember module that runs eagerly.

    Example:
        >>> import ember, ember.onnx
        >>> net = ember.nn.Linear(3, 2)
        >>> m = ember.onnx.load(ember.onnx.export(net, ember.ones(1, 3), None))
        >>> bool((m(ember.ones(1, 3)) - net(ember.ones(1, 3))).abs().max() < 1e-6)
        True
    """
    onnx = require("onnx")
    if isinstance(path, onnx.ModelProto):
        model, where = path, "the ModelProto"
    else:
        where = repr(os.fspath(path))
        try:
            model = onnx.load(os.fspath(path))
        except OSError:
            raise
        except Exception as e:  # protobuf's DecodeError and friends: a corrupt/truncated file
            raise ValueError(
                f"ember.onnx.load: {where} is not a valid ONNX model (corrupt or truncated "
                f"file: {type(e).__name__}: {e})"
            ) from e
    # an empty (or truncated-to-nothing) file parses as an empty ModelProto
    if not model.HasField("graph") or not model.graph.output:
        raise ValueError(
            f"ember.onnx.load: {where} is not a valid ONNX model (it has no graph or no "
            "graph outputs: an empty, truncated or non-ONNX file?)"
        )
    return ONNXModule(model)


# -- the operator table ----------------------------------------------------------------------


def _simple(name: str, fn: Callable[..., Any]) -> None:
    IMPORTS[name] = lambda m, *a, **k: fn(*a)


for _name, _fn in {
    "Abs": lambda x: x.abs(),
    "Acos": lambda x: x.acos(),
    "Asin": lambda x: x.asin(),
    "Atan": lambda x: x.atan(),
    "Ceil": lambda x: x.ceil(),
    "Cos": lambda x: x.cos(),
    "Cosh": lambda x: x.cosh(),
    "Erf": lambda x: x.erf(),
    "Exp": lambda x: x.exp(),
    "Floor": lambda x: x.floor(),
    "Log": lambda x: x.log(),
    "Neg": lambda x: -x,
    "Reciprocal": lambda x: x.reciprocal(),
    "Relu": lambda x: x.relu(),
    "Sigmoid": lambda x: x.sigmoid(),
    "Sign": lambda x: x.sign(),
    "Sin": lambda x: x.sin(),
    "Sinh": lambda x: x.sinh(),
    "Sqrt": lambda x: x.sqrt(),
    "Tan": lambda x: x.tan(),
    "Tanh": lambda x: x.tanh(),
    "Round": lambda x: x.round(),
    "Softplus": lambda x: F.softplus(x),
    "IsNaN": lambda x: x.isnan(),
    "Not": lambda x: x.logical_not(),
    "BitwiseNot": lambda x: ~x,
    "Add": lambda a, b: a + b,
    "Sub": lambda a, b: a - b,
    "Mul": lambda a, b: a * b,
    "Pow": lambda a, b: (a**b).to(a.dtype),  # ONNX Pow keeps the base's type
    "MatMul": lambda a, b: a @ b,
    "Equal": lambda a, b: a == b,
    "Less": lambda a, b: a < b,
    "LessOrEqual": lambda a, b: a <= b,
    "Greater": lambda a, b: a > b,
    "GreaterOrEqual": lambda a, b: a >= b,
    "And": lambda a, b: a.logical_and(b),
    "Or": lambda a, b: a.logical_or(b),
    "Xor": lambda a, b: a.logical_xor(b),
    "BitwiseAnd": lambda a, b: a & b,
    "BitwiseOr": lambda a, b: a | b,
    "BitwiseXor": lambda a, b: a ^ b,
    "Where": lambda c, a, b: _where(c, a, b),
}.items():
    _simple(_name, _fn)


# one output, which may itself be a sequence (a list)
IMPORTS["Identity"] = lambda m, x: [x]


def _where(c: Tensor, a: Tensor, b: Tensor) -> Tensor:
    from .. import where

    return where(c, a, b)


@imports("Div")
def _div(m: ONNXModule, a: Tensor, b: Tensor) -> Tensor:
    if a.dtype.is_floating_point:
        return a / b
    return (a.double() / b.double()).trunc().to(a.dtype)  # ONNX integer Div truncates


IMPORTS["Max"] = lambda m, *xs: _fold("maximum", xs)
IMPORTS["Min"] = lambda m, *xs: _fold("minimum", xs)


def _fold(name: str, xs: tuple) -> Tensor:
    import ember

    out = xs[0]
    for x in xs[1:]:
        out = getattr(ember, name)(out, x)
    return out


@imports("IsInf")
def _isinf(m: ONNXModule, x: Tensor, detect_negative: int = 1, detect_positive: int = 1) -> Any:
    inf = x.isinf()
    if not detect_negative:
        inf = inf.logical_and(x > 0)
    if not detect_positive:
        inf = inf.logical_and(x < 0)
    return inf


@imports("Cast")
def _cast(m: ONNXModule, x: Tensor, to: int, **_: Any) -> Tensor:
    from .._dtype import from_numpy_dtype

    return x.to(from_numpy_dtype(_np_dtype(m._onnx, to)))


@imports("Mod")
def _mod(m: ONNXModule, a: Tensor, b: Tensor, fmod: int = 0) -> Tensor:
    import ember

    return ember.fmod(a, b) if fmod else a % b


@imports("Gelu")
def _gelu(m: ONNXModule, x: Tensor, approximate: str = "none") -> Tensor:
    return F.gelu(x, approximate=approximate)


@imports("Elu")
def _elu(m: ONNXModule, x: Tensor, alpha: float = 1.0) -> Tensor:
    return F.elu(x, alpha=alpha)


@imports("LeakyRelu")
def _leaky(m: ONNXModule, x: Tensor, alpha: float = 0.01) -> Tensor:
    return F.leaky_relu(x, alpha)


@imports("Trilu")
def _trilu(m: ONNXModule, x: Tensor, k: Tensor | None = None, upper: int = 1) -> Tensor:
    d = int(k.item()) if k is not None else 0
    return x.triu(d) if upper else x.tril(d)


@imports("OneHot")
def _one_hot(m: ONNXModule, idx: Tensor, depth: Tensor, values: Tensor, axis: int = -1) -> Any:
    import ember

    n = int(_host(depth).reshape(-1)[0])
    nd = idx.ndim + 1
    axis %= nd
    idx = idx.long() if idx.dtype.is_floating_point is False else idx.trunc().long()
    idx = _where(idx < 0, idx + n, idx)  # negative indices count from the end; others miss
    shape = [1] * nd
    shape[axis] = n
    hot = idx.unsqueeze(axis) == ember.arange(n).reshape(*shape)
    return _where(hot, values[1], values[0])


@imports("ConstantOfShape")
def _constant_of_shape(m: ONNXModule, shape: Tensor, value: Any = None) -> Tensor:
    import ember

    v = np.zeros(1, np.float32) if value is None else np.asarray(value)
    return ember.full(tuple(_ints(shape)), v.reshape(-1)[0].item(), dtype=tensor(v).dtype)


def _reduce(kind: str) -> Op:
    def run(
        m: ONNXModule, x: Tensor, axes: Any = None, keepdims: int = 1,
        noop_with_empty_axes: int = 0, **_: Any,
    ) -> Any:  # fmt: skip
        import ember

        ax = _ints(axes) if isinstance(axes, (Tensor, np.ndarray)) else axes
        if not ax and noop_with_empty_axes:
            return x
        dims = tuple(range(x.ndim)) if not ax else tuple(a % x.ndim for a in ax)
        keep = bool(keepdims)
        if kind in ("max", "min", "lse") and any(x.shape[d] == 0 for d in dims):
            # the reduction of an empty set is the operation's identity
            shape = [1 if d in dims else s for d, s in enumerate(x.shape)]
            if not keep:
                shape = [s for d, s in enumerate(x.shape) if d not in dims]
            if x.dtype == ember.bool:
                return ember.full(tuple(shape), kind == "min", dtype=x.dtype)
            ident = float("inf") if kind == "min" else float("-inf")
            return ember.full(tuple(shape), ident, dtype=x.dtype)
        if kind == "sum":
            return x.sum(dims, keepdim=keep)
        if kind == "mean":
            return x.mean(dims, keepdim=keep)
        if kind == "max":
            return x.amax(dims, keepdim=keep)
        if kind == "min":
            return x.amin(dims, keepdim=keep)
        if kind == "lse":
            return x.logsumexp(dims, keepdim=keep)
        out = x
        for d in sorted((a % x.ndim for a in dims), reverse=True):
            out = out.prod(d, keepdim=keep)
        return out

    return run


IMPORTS["ReduceSum"] = _reduce("sum")
IMPORTS["ReduceMean"] = _reduce("mean")
IMPORTS["ReduceMax"] = _reduce("max")
IMPORTS["ReduceMin"] = _reduce("min")
IMPORTS["ReduceProd"] = _reduce("prod")
IMPORTS["ReduceLogSumExp"] = _reduce("lse")


def _arg(kind: str) -> Op:
    def run(m: ONNXModule, x: Tensor, axis: int = 0, keepdims: int = 1, select_last_index=0):
        if not select_last_index:
            return getattr(x, kind)(axis, keepdim=bool(keepdims))
        # the last of equal extremes is the first one in the flipped tensor
        i = getattr(x.flip(axis), kind)(axis, keepdim=bool(keepdims))
        return (x.shape[axis] - 1) - i

    return run


IMPORTS["ArgMax"] = _arg("argmax")
IMPORTS["ArgMin"] = _arg("argmin")


@imports("CumSum")
def _cumsum(m: ONNXModule, x: Tensor, axis: Tensor, exclusive: int = 0, reverse: int = 0) -> Any:
    a = int(axis.item()) % x.ndim
    y = x.flip(a) if reverse else x
    out = y.cumsum(a)
    if exclusive:
        out = out - y
    out = out.flip(a) if reverse else out
    return out.to(x.dtype)


IMPORTS["Transpose"] = lambda m, x, perm=None: x.permute(
    *(perm if perm is not None else range(x.ndim - 1, -1, -1))
)
IMPORTS["Reshape"] = lambda m, x, shape, allowzero=0: x.reshape(
    *[x.shape[i] if (s == 0 and not allowzero) else s for i, s in enumerate(_ints(shape))]
)
IMPORTS["Expand"] = lambda m, x, shape: _expand(x, _ints(shape))
IMPORTS["Concat"] = lambda m, *xs, axis: _cat(xs, axis)
IMPORTS["Squeeze"] = lambda m, x, axes=None: _squeeze(x, axes)
IMPORTS["Unsqueeze"] = lambda m, x, axes: _unsqueeze(x, _ints(axes))
IMPORTS["Tile"] = lambda m, x, reps: x.repeat(*_ints(reps))
IMPORTS["Shape"] = lambda m, x, start=0, end=None: np.asarray(x.shape[start:end], np.int64)
IMPORTS["Einsum"] = lambda m, *xs, equation: _einsum(equation, xs)


def _einsum(eq: str, xs: tuple) -> Tensor:
    import ember

    return ember.einsum(eq, *xs)


def _cat(xs: tuple, axis: int) -> Tensor:
    import ember

    return ember.cat(list(xs), axis)


def _expand(x: Tensor, shape: list[int]) -> Tensor:
    nd = max(x.ndim, len(shape))
    xs = (1,) * (nd - x.ndim) + tuple(x.shape)
    sh = (1,) * (nd - len(shape)) + tuple(shape)
    target = [a if b == 1 else b for a, b in zip(xs, sh)]
    return x.reshape(*xs).expand(*target)


def _squeeze(x: Tensor, axes: Any) -> Tensor:
    ax = _ints(axes) if axes is not None else [i for i, s in enumerate(x.shape) if s == 1]
    keep = [s for i, s in enumerate(x.shape) if i not in {a % x.ndim for a in ax}]
    return x.reshape(*keep)


def _unsqueeze(x: Tensor, axes: list[int]) -> Tensor:
    nd = x.ndim + len(axes)
    new = {a % nd for a in axes}
    it = iter(x.shape)
    return x.reshape(*[1 if i in new else next(it) for i in range(nd)])


@imports("Slice")
def _slice(m: ONNXModule, x: Tensor, starts: Tensor, ends: Tensor, axes=None, steps=None) -> Any:
    st, en = _ints(starts), _ints(ends)
    ax = _ints(axes) if axes is not None else list(range(len(st)))
    sp = _ints(steps) if steps is not None else [1] * len(st)
    idx: list[Any] = [slice(None)] * x.ndim
    for s, e, a, k in zip(st, en, ax, sp):
        n = x.shape[a]
        lo, hi, step = slice(s, e, k).indices(n)
        if k < 0 and hi < 0:
            hi = None  # runs down to index 0 included
        idx[a % x.ndim] = slice(lo, hi, step)
    return x[tuple(idx)]


def _wrap(idx: Tensor, n: int) -> Tensor:
    """ONNX indices may be negative (counted from the end)."""
    idx = idx.long()
    return _where(idx < 0, idx + n, idx)


@imports("Gather")
def _gather(m: ONNXModule, x: Tensor, idx: Tensor, axis: int = 0) -> Tensor:
    axis %= x.ndim
    flat = x.index_select(axis, _wrap(idx, x.shape[axis]).reshape(-1))
    shape = tuple(x.shape[:axis]) + tuple(idx.shape) + tuple(x.shape[axis + 1 :])
    return flat.reshape(*shape)


IMPORTS["ScatterElements"] = lambda m, x, idx, src, axis=0, reduction="none": _scatter(
    x, idx, src, axis, reduction
)


def _scatter(x: Tensor, idx: Tensor, src: Tensor, axis: int, reduction: str) -> Tensor:
    idx = _wrap(idx, x.shape[axis])
    if reduction in ("max", "min"):
        # one index slice along the axis never repeats a target: fold the slices in turn
        out = x
        for j in range(idx.shape[axis]):
            i, v = idx.narrow(axis, j, 1), src.narrow(axis, j, 1)
            cur = out.gather(axis, i)
            out = out.scatter(axis, i, cur.maximum(v) if reduction == "max" else cur.minimum(v))
        return out
    if reduction == "none":
        return x.scatter(axis, idx.long(), src)
    if reduction == "add":
        return x.scatter_add(axis, idx.long(), src)
    if reduction == "mul":
        return x.scatter(axis, idx.long(), src, reduce="multiply")
    raise NotImplementedError(f"ScatterElements with reduction {reduction!r}")


IMPORTS["If"] = lambda m, *a, **k: None  # run by ONNXModule._if (it needs the scope)
IMPORTS["Scatter"] = IMPORTS["ScatterElements"]  # its name before opset 11
IMPORTS["GatherElements"] = lambda m, x, idx, axis=0: x.gather(axis, _wrap(idx, x.shape[axis]))


@imports("Split")
def _split(m: ONNXModule, x: Tensor, split: Any = None, axis: int = 0, **k: Any) -> Any:
    if split is not None:
        sizes = _ints(split) if isinstance(split, (Tensor, np.ndarray)) else list(split)
        return list(x.split(sizes, axis))
    parts = int(k.get("num_outputs", m._n_out))
    n = x.shape[axis]
    step = -(-n // parts)  # the last part is smaller when the axis does not divide evenly
    return list(x.split([min(step, n - i * step) for i in range(parts)], axis))


@imports("Pad")
def _pad(m: ONNXModule, x: Tensor, pads: Any, value=None, axes=None, mode="constant") -> Any:
    import ember

    p = _ints(pads) if isinstance(pads, (Tensor, np.ndarray)) else list(pads)
    n = x.ndim
    ax = [a % n for a in _ints(axes)] if axes is not None else list(range(n))
    lo, hi = [0] * n, [0] * n
    for i, a in enumerate(ax):
        lo[a], hi[a] = p[i], p[i + len(ax)]
    # negative pads crop
    x = x[tuple(slice(-min(lo[d], 0), x.shape[d] + min(hi[d], 0)) for d in range(n))]
    lo, hi = [max(v, 0) for v in lo], [max(v, 0) for v in hi]
    if mode == "constant":
        v = value.item() if value is not None else 0
        for d in range(n):
            if lo[d] or hi[d]:
                shape = list(x.shape)
                parts = []
                for k in (lo[d], None, hi[d]):
                    if k is None:
                        parts.append(x)
                    elif k:
                        shape[d] = k
                        parts.append(ember.full(tuple(shape), v, dtype=x.dtype))
                x = ember.cat(parts, d)
        return x
    for d in range(n):
        if not (lo[d] or hi[d]):
            continue
        size = x.shape[d]
        if mode == "edge":
            idx = [min(max(i - lo[d], 0), size - 1) for i in range(size + lo[d] + hi[d])]
        elif mode == "reflect":
            period = 2 * (size - 1) if size > 1 else 1
            idx = []
            for i in range(size + lo[d] + hi[d]):
                j = (i - lo[d]) % period
                idx.append(j if j < size else period - j)
        elif mode == "wrap":
            idx = [(i - lo[d]) % size for i in range(size + lo[d] + hi[d])]
        else:
            raise NotImplementedError(f"Pad mode {mode!r}")
        x = x.index_select(d, tensor(np.asarray(idx, np.int64)))
    return x


@imports("Gemm")
def _gemm(m, a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0) -> Tensor:
    a = a.T if transA else a
    b = b.T if transB else b
    y = a @ b
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c * beta if beta != 1.0 else c)
    return y


@imports("LayerNormalization")
def _layer_norm(m, x, scale, bias=None, axis=-1, epsilon=1e-5, stash_type=1) -> Any:
    axis %= x.ndim
    if m._n_out == 1:
        return F.layer_norm(x, tuple(x.shape[axis:]), scale, bias, eps=epsilon)
    # the optional Mean and InvStdDev outputs: written out, in float32 (stash_type)
    dims = tuple(range(axis, x.ndim))
    xf = x.float() if stash_type == 1 else x
    mean = xf.mean(dims, keepdim=True)
    var = ((xf - mean) ** 2).mean(dims, keepdim=True)
    inv = (var + epsilon).rsqrt()
    y = ((xf - mean) * inv).to(x.dtype) * scale
    if bias is not None:
        y = y + bias
    return [y, mean, inv]


# operators kept in their own modules register into IMPORTS when imported
from . import _import_ops, _import_pool, _import_quant, _import_resize, _import_rnn  # noqa: E402, F401
