"""Ember's environment variables, parsed in one place.

Boolean variables accept what users type: ``1/0``, ``true/false``, ``yes/no``, ``on/off``
(any case, surrounding spaces ignored); unset or empty means the default. Anything else is an
error naming the variable, so ``EMBER_KEEP_BLAS_THREADS=0`` can never mean "keep".
README's section "What import ember changes in your process" lists the variables that
switch off Ember's process-wide effects.

Example:
    >>> import os
    >>> from ember._env import env_flag
    >>> os.environ["EMBER_EXAMPLE_FLAG"] = "no"
    >>> env_flag("EMBER_EXAMPLE_FLAG", default=True)
    False
    >>> del os.environ["EMBER_EXAMPLE_FLAG"]
"""

from __future__ import annotations

import os

__all__ = ["FALSE_WORDS", "TRUE_WORDS", "env_choice", "env_flag", "env_int"]

TRUE_WORDS = frozenset({"1", "true", "yes", "on", "y", "t"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", "n", "f"})


def env_flag(name: str, default: bool) -> bool:
    """The boolean value of the environment variable ``name`` (``default`` when unset/empty).

    Raises ValueError naming the variable for any other value.

    Example:
        >>> from ember._env import env_flag
        >>> env_flag("EMBER_SURELY_UNSET_VARIABLE", default=True)
        True
    """
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    v = raw.strip().lower()
    if v in TRUE_WORDS:
        return True
    if v in FALSE_WORDS:
        return False
    raise ValueError(
        f"environment variable {name}={raw!r} is not a boolean: use 1/0, true/false, yes/no "
        "or on/off (or unset it for the default)"
    )


def env_int(name: str, default: int, minimum: int = 1) -> int:
    """The integer value of the environment variable ``name`` (``default`` when unset/empty).

    Raises ValueError naming the variable when the value is not an integer >= ``minimum``.

    Example:
        >>> from ember._env import env_int
        >>> env_int("EMBER_SURELY_UNSET_VARIABLE", default=16)
        16
    """
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        v = int(raw.strip())
    except ValueError:
        v = None
    if v is None or v < minimum:
        raise ValueError(
            f"environment variable {name}={raw!r} must be an integer >= {minimum} "
            "(or unset for the default)"
        )
    return v


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """The value of the environment variable ``name``, one of ``choices`` (any case, spaces
    ignored; ``default`` when unset/empty).

    Raises ValueError naming the variable and the choices for any other value.

    Example:
        >>> from ember._env import env_choice
        >>> env_choice("EMBER_SURELY_UNSET_VARIABLE", "auto", ("auto", "mkl"))
        'auto'
    """
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    v = raw.strip().lower()
    if v not in choices:
        raise ValueError(
            f"environment variable {name}={raw!r} must be one of {', '.join(choices)} "
            "(or unset for the default)"
        )
    return v
