"""``ember.cuda``: GPU queries. The CUDA backend is not part of this build, so these
report no device; asking for ``'cuda'`` tensors raises a clear error."""

__all__ = ["device_count", "is_available", "manual_seed", "manual_seed_all", "synchronize"]


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def synchronize() -> None:
    raise RuntimeError("ember.cuda.synchronize: no CUDA backend is available in this build")


def manual_seed(seed: int) -> None:
    """No-op without a GPU (kept so seeding code ports unchanged)."""


def manual_seed_all(seed: int) -> None:
    """No-op without a GPU."""
