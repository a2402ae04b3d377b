"""``ember.backends.cudnn``: the cuDNN switches PyTorch scripts set
(``torch.backends.cudnn.benchmark = True``). Ember has no cuDNN (its convolutions choose their
CPU path themselves and are deterministic), so the flags are accepted and read back, and
change nothing.

Example:
    >>> import ember
    >>> ember.backends.cudnn.benchmark = True
    >>> ember.backends.cudnn.is_available(), ember.backends.cudnn.benchmark
    (False, True)
    >>> ember.backends.cudnn.benchmark = False
"""

__all__ = ["allow_tf32", "benchmark", "deterministic", "enabled", "is_available", "version"]

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    """False: this build has no cuDNN.

    Example:
        >>> import ember
        >>> ember.backends.cudnn.is_available()
        False
    """
    return False


def version() -> None:
    """None, as PyTorch's where cuDNN is not available.

    Example:
        >>> import ember
        >>> ember.backends.cudnn.version() is None
        True
    """
    return None
