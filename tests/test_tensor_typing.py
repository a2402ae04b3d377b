"""The methods ``ember._tensor_methods`` installs on Tensor at import time are declared for type
checkers in ``ember/_tensor.py`` (an ``if TYPE_CHECKING:`` block in the class body). These
tests keep the two in step: every installed attribute is declared, every declaration exists
at runtime, and named methods declare the parameters the runtime method takes."""

from __future__ import annotations

import ast
import inspect
import pathlib
from typing import Any

import pytest

import ember
from ember import Tensor

SOURCE = pathlib.Path(ember.__file__).with_name("_tensor.py")


def _class_body() -> list[ast.stmt]:
    tree = ast.parse(SOURCE.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Tensor")
    return cls.body


def _declared() -> dict[str, ast.FunctionDef]:
    """The functions in the class body's ``if TYPE_CHECKING:`` block."""
    out: dict[str, ast.FunctionDef] = {}
    for node in _class_body():
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            out.update({f.name: f for f in node.body if isinstance(f, ast.FunctionDef)})
    return out


def _defined_in_body() -> set[str]:
    """Names the class body itself binds at runtime (defs, assignments, slots)."""
    names: set[str] = set(Tensor.__slots__)
    for node in _class_body():
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _params(fn: ast.FunctionDef) -> list[str]:
    a = fn.args
    names = [p.arg for p in a.posonlyargs + a.args]
    names += [f"*{a.vararg.arg}"] if a.vararg else []
    names += [p.arg for p in a.kwonlyargs]
    names += [f"**{a.kwarg.arg}"] if a.kwarg else []
    return names


def _runtime_params(obj: Any) -> list[str]:
    if isinstance(obj, property):
        obj = obj.fget
    out = []
    for p in inspect.signature(obj).parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            out.append(f"*{p.name}")
        elif p.kind is p.VAR_KEYWORD:
            out.append(f"**{p.name}")
        else:
            out.append(p.name)
    return out


def test_every_installed_attribute_is_declared():
    body = _defined_in_body()
    installed = {
        name
        for name, value in vars(Tensor).items()
        if name not in body
        # class machinery (__doc__, __module__, __dict__ descriptor, ...), not methods
        and not (name.startswith("__") and not callable(value))
    }
    assert "to" in installed and "__add__" in installed  # the scan sees installed methods
    missing = sorted(installed - set(_declared()))
    assert not missing, f"installed on Tensor but not declared in ember/_tensor.py: {missing}"


@pytest.mark.parametrize("name", sorted(_declared()))
def test_declaration_matches_runtime(name):
    fn = _declared()[name]
    runtime = inspect.getattr_static(Tensor, name)
    is_property = any(ast.unparse(d) == "property" for d in fn.decorator_list)
    assert isinstance(runtime, property) == is_property, name
    if name.startswith("__"):
        return  # operators are called positionally; the op functions name them x, y or input
    got = _runtime_params(runtime)
    if got == ["self", "*args", "**kwargs"]:
        return  # a generic in-place wrapper (_inplace_method) forwards to a checked method
    assert got == _params(fn), f"Tensor.{name}: runtime {got}, declared {_params(fn)}"
