"""Every Ember name shared with PyTorch takes PyTorch's parameters (issue #21).

For each namespace pair (``ember``/``torch``, ``ember.Tensor``/``torch.Tensor``,
``ember.nn.functional``, ``ember.nn`` module constructors, ``ember.nn.init``,
``ember.nn.utils``, ``ember.optim``, ``ember.optim.lr_scheduler``, and the methods of
``nn.Module``, ``optim.Optimizer`` and ``LRScheduler``) every public callable present in both is
compared with PyTorch's own signatures: ``inspect.signature`` where it reads them, else the
builtin's ATen schemas (what its binding parses, one per overload), else
``torch.overrides.get_testing_overrides()`` and the signature lines of its docstring. Ember must
match one overload:

- PyTorch's positional parameters appear in Ember in the same order, under the same names;
- a parameter keyword-only in PyTorch is keyword-only in Ember (and the other way round);
- where both give a plain default (None, bool, number, string, tuple of those) they agree;
- a parameter optional in PyTorch is optional in Ember;
- Ember's own extras (not in PyTorch) are optional, after PyTorch's positional parameters.

Deliberate differences live in ``EXCEPTIONS`` below, mirrored in ``docs/api-differences.md``
(section "PyTorch"). Run this file as a script to print the mismatches and the counts.
"""

from __future__ import annotations

import ast
import inspect
import re
import warnings

import pytest

torch = pytest.importorskip("torch")

import ember  # noqa: E402
import ember.nn.functional as F  # noqa: E402

P = inspect.Parameter
POSITIONAL = (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)

# One table of deliberate differences. A key ending in "=" is a PyTorch parameter Ember does
# not take anywhere (it is dropped from PyTorch's signature before comparing); any other key is
# a qualified name ("torch.Tensor.x", "torch.nn.functional.x"...) that is not compared.
EXCEPTIONS: dict[str, str] = {
    # -- PyTorch parameters Ember does not take (CPU-only, NumPy storage, no out= buffers) --
    "out=": "no preallocated output buffers: every op returns a new tensor",
    "layout=": "strided layout only (no sparse tensors)",
    "device=": "CPU only; factories and modules always allocate on the CPU",
    "pin_memory=": "CPU only, no page-locked memory",
    "memory_format=": "the layout follows the input (NumPy strides), not a requested format",
    "generator=": "one global generator (ember.manual_seed / ember.random)",
    "non_blocking=": "CPU only, every copy is synchronous",
    "foreach=": "one implementation per optimizer (no multi-tensor path)",
    "fused=": "one implementation per optimizer (no fused kernels)",
    "capturable=": "no CUDA graphs",
    "differentiable=": "optimizer steps never record autograd history",
    "implicit=": "a flag of the TorchScript graph (Tensor.expand), not a user parameter",
    # -- names not compared --
    "torch.save": "safetensors-style archives, never pickle: no pickle_module/pickle_protocol "
    "and no zipfile switches",
    "torch.load": "no pickle: no pickle_module or mmap; map_location and weights_only are "
    "accepted and ignored (nothing is unpickled); safe_globals names the allowed classes",
    "torch.nn.Module.compile": "PyTorch's reads as (*args, **kwargs) (nothing to compare); "
    "Ember's forwards them to ember.compile, whose signature is PyTorch's torch.compile",
    "torch.set_num_threads": "PyTorch's builtin takes its one argument positionally only "
    "(the testing overrides call it `int`); Ember names it n",
    "torch.tensor_split": "named indices_or_sections as in PyTorch's documentation (its "
    "overloads name it sections, indices or tensor_indices_or_sections); positional calls agree",
    "torch.Tensor.tensor_split": "generated from ember.tensor_split (see torch.tensor_split)",
    "torch.Tensor.where": "PyTorch's testing override reads where(condition, self, other), the "
    "receiver second; the method is x.where(condition, other) as PyTorch documents it",
    "torch.searchsorted": "the values are named input as in PyTorch's documentation (its "
    "testing override names them self); positional calls agree",
    "torch.polygamma": "the tensor is named input as in PyTorch's documentation (its testing "
    "override names it self); positional calls agree",
    "torch.Tensor.polygamma": "generated from ember.polygamma_of(input, n): x.polygamma(n) "
    "works as in PyTorch",
    "torch.is_anomaly_enabled": "a builtin in PyTorch, with no signature to compare",
    "torch.set_anomaly_enabled": "a builtin in PyTorch, with no signature to compare",
    "torch.Tensor.split": "the method is generated from ember.split, so it keeps torch.split's "
    "name split_size_or_sections (torch.Tensor.split says split_size); positional calls agree",
}


def _is_ignored_param(name: str) -> bool:
    return f"{name}=" in EXCEPTIONS


# ---------------------------------------------------------------------------------------------
# signatures


def _overrides() -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.overrides.get_testing_overrides()


_OVERRIDES = _overrides()


def torch_signatures(obj, name: str, method: bool) -> list[tuple[inspect.Signature, bool]]:
    """PyTorch's signatures of ``obj``: one per overload, each with whether it has a receiver.

    ``inspect`` reads the Python-level functions; the builtins' first overload comes from the
    testing overrides and the others from the signature lines of their docstrings.
    """
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        sig = None
    if sig is not None and not _opaque(sig):
        return [(sig, method or inspect.isclass(obj))]
    # a boolean_dispatch (max_pool2d, fractional_max_pool2d...): the Python function it calls
    code = getattr(target, "__code__", None)
    closure = getattr(target, "__closure__", None) or ()
    cells = {} if code is None else dict(zip(code.co_freevars, closure))
    cells = {k: v.cell_contents for k, v in cells.items()}
    if callable(cells.get("if_true")) and callable(cells.get("if_false")):
        return [(inspect.signature(cells["if_true"]), method)]
    if inspect.isclass(obj) and issubclass(obj, torch.nn.Module):
        return [(_module_signature(obj), True)]
    # the ATen schemas are what the binding parses; the overrides and the docstrings are
    # hand-written (and sometimes stale), so they count only for names without a schema
    sigs = [(schema_sig, method) for schema_sig in _schema_signatures(name, method)]
    if sigs:
        return sigs
    lam = _OVERRIDES.get(obj)
    if lam is not None:
        sigs.append((inspect.signature(lam), method))
    for doc_sig in _doc_signatures(getattr(obj, "__doc__", None) or "", name):
        sigs.append((doc_sig, False))
    return sigs


_CODED = ("dtype", "layout", "device", "memory_format")


def _schema_signatures(name: str, method: bool) -> list[inspect.Signature]:
    """The ATen schemas of ``name`` (the overloads without out-parameters)."""
    try:
        schemas = torch._C._jit_get_schemas_for_operator(f"aten::{name}")
    except RuntimeError:
        return []
    out = []
    for schema in schemas:
        params = []
        for i, a in enumerate(schema.arguments):
            if a.kwarg_only and not a.has_default_value():
                break  # an out= overload (values=, indices=...)
            pname = {"from": "from_"}.get(a.name, a.name)
            if i == 0 and pname == "self" and not method:
                pname = "input"  # the Python binding of torch.name calls the receiver input
            kind = P.KEYWORD_ONLY if a.kwarg_only else P.POSITIONAL_OR_KEYWORD
            default = a.default_value if a.has_default_value() else P.empty
            if default is not P.empty and a.name in _CODED:
                default = _Opaque()  # a dtype/layout/format default is stored as a code
            params.append(P(pname, kind, default=default))
        else:
            out.append(inspect.Signature(params, __validate_parameters__=False))
    return out


_DOC_LINE = re.compile(r"^\s*(?:\.\. function:: )?(\w+)\((.*)\)\s*(?:->.*)?$")


def _doc_signatures(doc: str, name: str) -> list[inspect.Signature]:
    out = []
    for line in doc.splitlines():
        m = _DOC_LINE.match(line)
        if m is None or m.group(1) != name:
            continue
        params = re.sub(r"\bfrom\b", "from_", m.group(2))
        try:
            fn = ast.parse(f"def f({params}): pass").body[0]
        except SyntaxError:
            continue
        out.append(_signature_of_ast(fn.args))
    return out


class _Opaque:
    """A default written as an expression (``torch.float``...): never compared."""


def _literal(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return _Opaque()


def _signature_of_ast(a: ast.arguments) -> inspect.Signature:
    params = []
    pos = [*a.posonlyargs, *a.args]
    defaults = [P.empty] * (len(pos) - len(a.defaults)) + [_literal(d) for d in a.defaults]
    for arg, d in zip(pos, defaults):
        params.append(P(arg.arg, P.POSITIONAL_OR_KEYWORD, default=d))
    if a.vararg is not None:
        params.append(P(a.vararg.arg, P.VAR_POSITIONAL))
    for arg, d in zip(a.kwonlyargs, a.kw_defaults):
        params.append(P(arg.arg, P.KEYWORD_ONLY, default=P.empty if d is None else _literal(d)))
    if a.kwarg is not None:
        params.append(P(a.kwarg.arg, P.VAR_KEYWORD))
    # docstrings write "dim=None" after "*dims" positionally; keep the order they give
    try:
        return inspect.Signature(params)
    except ValueError:
        return inspect.Signature(params, __validate_parameters__=False)


def _module_signature(cls) -> inspect.Signature:
    """The constructor of a module whose ``__init__`` takes ``(*args, **kwargs)``."""
    if not issubclass(cls, torch.nn.RNNBase):
        return inspect.Signature([P("self", P.POSITIONAL_OR_KEYWORD)])  # no parameters
    # RNN/LSTM/GRU forward to RNNBase(mode, ...): RNN takes `nonlinearity` fourth and only
    # LSTM takes `proj_size`
    base = inspect.signature(torch.nn.RNNBase.__init__).parameters.values()
    params = [p for p in base if p.name != "mode"]
    if cls is not torch.nn.LSTM:
        params = [p for p in params if p.name != "proj_size"]
    if cls is torch.nn.RNN:
        params.insert(4, P("nonlinearity", P.POSITIONAL_OR_KEYWORD, default="tanh"))
    return inspect.Signature(params)


def _opaque(sig: inspect.Signature) -> bool:
    # (*args, **kwargs) tells nothing about the real parameters
    kinds = [p.kind for p in sig.parameters.values() if p.name != "self"]
    return kinds == [P.VAR_POSITIONAL, P.VAR_KEYWORD]


def _params(sig: inspect.Signature, drop_self: bool) -> list[inspect.Parameter]:
    ps = list(sig.parameters.values())
    if drop_self and ps and ps[0].name in ("self", "input") and ps[0].kind in POSITIONAL:
        ps = ps[1:]
    return ps


def _plain(v) -> bool:
    if v is None or isinstance(v, (bool, int, float, str)):
        return True
    if isinstance(v, tuple):
        return all(_plain(x) for x in v)
    return False


def _same_default(a, b) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same_default(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return a == b and type(a) is type(b)


def compare(ember_obj, torch_obj, name: str, method: bool = False) -> list[str]:
    """The mismatches between Ember's signature and the closest PyTorch overload."""
    candidates = torch_signatures(torch_obj, name, method)
    if not candidates:
        return ["no PyTorch signature found to compare with"]  # never pass unchecked
    target = ember_obj.__init__ if inspect.isclass(ember_obj) else ember_obj
    esig = inspect.signature(target)
    eps = list(esig.parameters.values())
    if method or inspect.isclass(ember_obj):
        # the receiver: `self`, or the op function's first parameter when the method is the
        # function itself (ember._tensor_ops binds methods to their op functions)
        eps = eps[1:]
    best: list[str] | None = None
    for tsig, receiver in candidates:
        problems = _compare_params(eps, _params(tsig, receiver))
        if best is None or len(problems) < len(best):
            best = problems
        if not problems:
            break
    return best or []


def _compare_params(eps: list[inspect.Parameter], all_tps: list[inspect.Parameter]) -> list[str]:
    tps = [p for p in all_tps if not _is_ignored_param(p.name)]
    problems: list[str] = []
    e_by = {p.name: p for p in eps}
    e_var = any(p.kind == P.VAR_POSITIONAL for p in eps)
    e_kw = any(p.kind == P.VAR_KEYWORD for p in eps)
    t_var = any(p.kind == P.VAR_POSITIONAL for p in tps)

    # positional parameters: same names, same order
    t_pos = [p.name for p in tps if p.kind in POSITIONAL]
    e_pos = [p.name for p in eps if p.kind in POSITIONAL and not _is_ignored_param(p.name)]
    if t_var or e_var:
        # (*dims) on one side and (dims) on the other: compare the names after the varargs
        t_pos = [n for n in t_pos if n in e_by]
    if e_pos[: len(t_pos)] != t_pos and not e_var:
        problems.append(f"positional parameters {e_pos} != torch {t_pos}")

    for tp in tps:
        if tp.kind in (P.VAR_POSITIONAL, P.VAR_KEYWORD):
            continue
        ep = e_by.get(tp.name)
        if ep is None:
            if not e_kw and not (e_var and tp.kind in POSITIONAL):
                problems.append(f"missing parameter {tp.name!r}")
            continue
        if (tp.kind == P.KEYWORD_ONLY) != (ep.kind == P.KEYWORD_ONLY) and ep.kind in (
            *POSITIONAL,
            P.KEYWORD_ONLY,
        ):
            want = "keyword-only" if tp.kind == P.KEYWORD_ONLY else "positional"
            problems.append(f"{tp.name!r} should be {want}")
        if tp.default is not P.empty and ep.default is P.empty:
            problems.append(f"{tp.name!r} needs a default (torch: {tp.default!r})")
        elif (
            tp.default is not P.empty
            and _plain(tp.default)
            and _plain(ep.default)
            and not _same_default(tp.default, ep.default)
        ):
            problems.append(f"default {tp.name}={ep.default!r} != torch {tp.default!r}")

    t_names = {p.name for p in all_tps}
    for ep in eps:
        if ep.name in t_names or ep.kind in (P.VAR_POSITIONAL, P.VAR_KEYWORD):
            continue
        if ep.default is P.empty and not (t_var and ep.kind in POSITIONAL):
            problems.append(f"extra required parameter {ep.name!r}")
        elif ep.kind in POSITIONAL and ep.name in e_pos and e_pos.index(ep.name) < len(t_pos):
            problems.append(f"extra parameter {ep.name!r} before torch's positionals")
    return problems


# ---------------------------------------------------------------------------------------------
# the shared names


def _public(ns) -> list[str]:
    names = getattr(ns, "__all__", None) or dir(ns)
    return sorted(n for n in names if not n.startswith("_"))


def _functions(ember_ns, torch_ns, prefix: str) -> list[tuple[str, object, object]]:
    out = []
    for name in _public(ember_ns):
        e, t = getattr(ember_ns, name, None), getattr(torch_ns, name, None)
        if e is None or t is None or inspect.isclass(e) or inspect.ismodule(e):
            continue
        if not callable(e) or not callable(t) or isinstance(e, ember.dtype):
            continue
        out.append((f"{prefix}.{name}", e, t))
    return out


def _methods() -> list[tuple[str, object, object]]:
    out = []
    for name in dir(ember.Tensor):
        if name.startswith("_") or not hasattr(torch.Tensor, name):
            continue
        e, t = inspect.getattr_static(ember.Tensor, name), getattr(torch.Tensor, name)
        if isinstance(e, property) or not callable(e) or isinstance(e, (staticmethod, classmethod)):
            continue
        if isinstance(inspect.getattr_static(torch.Tensor, name), property) or not callable(t):
            continue
        out.append((f"torch.Tensor.{name}", getattr(ember.Tensor, name), t))
    return out


def _class_methods(ember_cls, torch_cls, prefix: str) -> list[tuple[str, object, object]]:
    out = []
    for name in dir(ember_cls):
        if name.startswith("_") or not hasattr(torch_cls, name):
            continue
        e, t = inspect.getattr_static(ember_cls, name), inspect.getattr_static(torch_cls, name)
        if inspect.isfunction(e) and inspect.isfunction(t):
            out.append((f"{prefix}.{name}", getattr(ember_cls, name), getattr(torch_cls, name)))
    return out


def _classes(ember_ns, torch_ns, prefix: str, base) -> list[tuple[str, object, object]]:
    out = []
    for name in _public(ember_ns):
        e, t = getattr(ember_ns, name, None), getattr(torch_ns, name, None)
        if inspect.isclass(e) and inspect.isclass(t) and issubclass(e, base):
            out.append((f"{prefix}.{name}", e, t))
    return out


def shared_names() -> dict[str, list[tuple[str, object, object]]]:
    import ember.nn.init
    import ember.nn.utils
    from ember.optim import lr_scheduler

    return {
        "torch": _functions(ember, torch, "torch"),
        "torch.Tensor": _methods(),
        "torch.nn.functional": _functions(F, torch.nn.functional, "torch.nn.functional"),
        "torch.nn": _classes(ember.nn, torch.nn, "torch.nn", ember.nn.Module),
        "torch.nn.init": _functions(ember.nn.init, torch.nn.init, "torch.nn.init"),
        "torch.autograd": _functions(ember.autograd, torch.autograd, "torch.autograd"),
        "torch.autograd.functional": _functions(
            ember.autograd.functional, torch.autograd.functional, "torch.autograd.functional"
        ),
        "torch.nn.utils": _functions(ember.nn.utils, torch.nn.utils, "torch.nn.utils"),
        "torch.optim": _classes(ember.optim, torch.optim, "torch.optim", ember.optim.Optimizer),
        "torch.nn.Module methods": _class_methods(
            ember.nn.Module, torch.nn.Module, "torch.nn.Module"
        ),
        "torch.optim.Optimizer methods": _class_methods(
            ember.optim.Optimizer, torch.optim.Optimizer, "torch.optim.Optimizer"
        ),
        "torch.optim.lr_scheduler.LRScheduler methods": _class_methods(
            lr_scheduler.LRScheduler,
            torch.optim.lr_scheduler.LRScheduler,
            "torch.optim.lr_scheduler.LRScheduler",
        ),
        "torch.optim.lr_scheduler": _classes(
            lr_scheduler, torch.optim.lr_scheduler, "torch.optim.lr_scheduler", object
        ),
    }


SHARED = shared_names()
_METHOD_PREFIXES = (
    "torch.Tensor.",
    "torch.nn.Module.",
    "torch.optim.Optimizer.",
    "torch.optim.lr_scheduler.LRScheduler.",
)


def _is_method(qualname: str) -> bool:
    return qualname.startswith(_METHOD_PREFIXES)


CASES = [case for cases in SHARED.values() for case in cases]
# the deliberate differences are checked by test_exceptions_are_current (they must differ)
MATCHING = [c for c in CASES if c[0] not in EXCEPTIONS]


@pytest.mark.parametrize(
    ("qualname", "ember_obj", "torch_obj"), MATCHING, ids=[c[0] for c in MATCHING]
)
def test_signature_matches_torch(qualname: str, ember_obj, torch_obj) -> None:
    name = qualname.rsplit(".", 1)[1]
    problems = compare(ember_obj, torch_obj, name, method=_is_method(qualname))
    assert not problems, f"{qualname}: " + "; ".join(problems)


def test_names_checked() -> None:
    counts = {ns: len(cases) for ns, cases in SHARED.items()}
    n_checked = sum(counts.values()) - sum(1 for c in CASES if c[0] in EXCEPTIONS)
    print(f"signatures checked against PyTorch: {n_checked} {counts}")
    assert n_checked >= 650
    assert all(counts.values()), counts


def test_exceptions_are_current() -> None:
    # a listed name that is no longer shared (or now matches) is a stale entry
    cases = {c[0]: c for c in CASES}
    for key in EXCEPTIONS:
        if key.endswith("="):
            continue
        assert key in cases, f"stale exception {key!r}: not a shared name"
        _, e, t = cases[key]
        name = key.rsplit(".", 1)[1]
        assert compare(e, t, name, _is_method(key)), f"{key!r} now matches"


def test_docs_mirror_exceptions() -> None:
    from pathlib import Path

    doc = Path(__file__).parents[1] / "docs" / "api-differences.md"
    text = doc.read_text()
    assert "## PyTorch" in text
    for key in EXCEPTIONS:
        assert f"`{key}`" in text, f"{key!r} is missing from docs/api-differences.md"


if __name__ == "__main__":
    total = 0
    for ns, cases in SHARED.items():
        bad = 0
        for qualname, e, t in cases:
            if qualname in EXCEPTIONS:
                continue
            name = qualname.rsplit(".", 1)[1]
            problems = compare(e, t, name, method=_is_method(qualname))
            if problems:
                bad += 1
                print(f"{qualname}: " + "; ".join(problems))
        print(f"== {ns}: {len(cases)} names, {bad} mismatched")
        total += len(cases)
    print("total", total)
