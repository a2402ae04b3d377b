"""Name -> constructor table behind :func:`ember.models.get` and :func:`list_models`."""

from __future__ import annotations

from collections.abc import Callable

from ember import nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: make a constructor reachable by its function name."""
    if fn.__name__ in _MODELS:
        raise ValueError(f"ember.models: a model named {fn.__name__!r} is already registered")
    _MODELS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    """The names :func:`get` accepts, sorted.

    Example:
        >>> import ember
        >>> "resnet18" in ember.models.list_models()
        True
    """
    return sorted(_MODELS)


def get(name: str, **kwargs) -> nn.Module:
    """Build the architecture called ``name`` with the constructor's keyword arguments.

    Example:
        >>> import ember
        >>> m = ember.models.get("lenet5", num_classes=3)
        >>> m(ember.zeros(2, 1, 32, 32)).shape
        ember.Size([2, 3])
    """
    if not isinstance(name, str):
        raise TypeError(f"ember.models.get: name must be a str, got {type(name).__name__}")
    try:
        fn = _MODELS[name]
    except KeyError:
        known = ", ".join(list_models())
        raise ValueError(f"ember.models.get: unknown model {name!r}; known: {known}") from None
    try:
        return fn(**kwargs)
    except TypeError as e:
        raise TypeError(f"ember.models.get({name!r}): {e}") from None
