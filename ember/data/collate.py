"""Turning a list of samples into a batch.

Collation is split in two so that worker processes never pickle ember Tensors:
:func:`collate_numpy` runs in the worker and builds NumPy arrays; :func:`to_tensors`
runs in the main process and wraps them with ``ember.from_numpy`` (zero copy).
:func:`default_collate` is the two together, for use outside a loader.
"""

from __future__ import annotations

import collections.abc
import numbers
from typing import Any

import numpy as np

__all__ = ["collate_numpy", "default_collate", "default_convert", "to_tensors"]

_TENSOR_TYPE = None


def _tensor_type():
    """``ember.Tensor``, imported on first use (ember.data may load before the core)."""
    global _TENSOR_TYPE
    if _TENSOR_TYPE is None:
        import ember

        _TENSOR_TYPE = ember.Tensor
    return _TENSOR_TYPE


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def collate_numpy(batch: list) -> Any:
    """Collate samples into NumPy arrays, keeping the structure of one sample.

    Arrays and ember Tensors are stacked along a new first axis; Python ints become
    int64, floats float64 and bools bool arrays (as in PyTorch); NumPy scalars keep
    their dtype; strings stay a list; tuples, lists, dicts and namedtuples are collated
    field by field.

    Example:
        >>> import numpy as np
        >>> out = collate_numpy([(np.zeros(2), 1), (np.ones(2), 0)])
        >>> out[0].shape, out[1].dtype.name
        ((2, 2), 'int64')
    """
    elem = batch[0]
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "OUS":
            raise TypeError(f"default_collate: cannot batch NumPy arrays of dtype {elem.dtype}")
        return _stack(batch)
    if isinstance(elem, _tensor_type()):
        return _stack([t.numpy() for t in batch])
    if isinstance(elem, np.generic):
        return np.array(batch, dtype=elem.dtype)
    if isinstance(elem, numbers.Integral):
        # NOTE: as torch.tensor(batch): bools stay bool, ints int64 and a float among
        # them makes it float32 (was truncated: [1, 2.5] -> [1, 2]; [True, 2] -> all True)
        if all(isinstance(e, bool) for e in batch):
            return np.array(batch, dtype=np.bool_)
        if all(isinstance(e, numbers.Integral) for e in batch):
            return np.array(batch, dtype=np.int64)
        _check_numbers(batch)
        return np.array(batch, dtype=np.float32)
    if isinstance(elem, numbers.Real):
        _check_numbers(batch)
        return np.array(batch, dtype=np.float64)
    if isinstance(elem, (str, bytes)):
        return batch  # as PyTorch: the batch's own sequence (a tuple inside a sample)
    if isinstance(elem, collections.abc.Mapping):
        return {key: collate_numpy([d[key] for d in batch]) for key in elem}
    if _is_namedtuple(elem):
        return type(elem)(*(collate_numpy(s) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(e) != size for e in batch):
            raise RuntimeError("default_collate: each element in the batch should be of equal size")
        transposed = [collate_numpy(s) for s in zip(*batch)]
        # NOTE: tuples come back as lists, as PyTorch's default_collate does
        return transposed if isinstance(elem, tuple) else type(elem)(transposed)
    if hasattr(elem, "__array__"):  # e.g. PIL images: one clear path instead of an error
        return _stack([np.asarray(e) for e in batch])
    raise TypeError(
        f"default_collate: batch must contain tensors, NumPy arrays, numbers, "
        f"strings, dicts or lists; found {type(elem).__name__}"
    )


def _check_numbers(batch) -> None:
    """A None or string among numbers must not become nan (NumPy's float cast)."""
    for i, e in enumerate(batch):
        if not isinstance(e, (numbers.Real, np.number)):
            raise TypeError(
                f"default_collate: entry {i} of the batch is {type(e).__name__}, "
                f"but entry 0 is a number"
            )


def _stack(arrays: list) -> np.ndarray:
    first = arrays[0]
    shape = first.shape
    for i, a in enumerate(arrays):
        if a.shape != shape:
            raise RuntimeError(
                f"default_collate: stack expects each array to be equal size, "
                f"but got {shape} at entry 0 and {a.shape} at entry {i}"
            )
    # NOTE: one preallocated output and a copy per sample; np.stack does the same work but
    # first builds a list of expanded views
    dtype = first.dtype
    if any(a.dtype != dtype for a in arrays):  # NOTE: PyTorch's promotion (int32 + float32:
        dtype = _promote([a.dtype for a in arrays])  # float32), not NumPy's (float64)
    out = np.empty((len(arrays),) + shape, dtype=dtype)
    for i, a in enumerate(arrays):
        out[i] = a
    return out


def _promote(dtypes: list) -> np.dtype:
    from .._dtype import from_numpy_dtype, promote_types

    try:
        d = from_numpy_dtype(dtypes[0])
        for other in dtypes[1:]:
            d = promote_types(d, from_numpy_dtype(other))
        return np.dtype(d.np)
    except (TypeError, ValueError, KeyError):  # a dtype ember has no name for
        return np.result_type(*dtypes)


def to_tensors(tree: Any) -> Any:
    """Replace every NumPy array in a (nested) batch by an ember Tensor sharing its memory."""
    if isinstance(tree, np.ndarray):
        import ember

        return ember.from_numpy(tree)
    if isinstance(tree, dict):
        return {k: to_tensors(v) for k, v in tree.items()}
    if _is_namedtuple(tree):
        return type(tree)(*(to_tensors(v) for v in tree))
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_tensors(v) for v in tree)
    return tree


def default_collate(batch: list) -> Any:
    """Collate samples into ember Tensors, like PyTorch's ``default_collate``.

    Example:
        >>> import numpy as np
        >>> x, y = default_collate([(np.zeros((2, 3), np.float32), 1)] * 4)
        >>> tuple(x.shape), tuple(y.shape)
        ((4, 2, 3), (4,))
    """
    return to_tensors(collate_numpy(batch))


def convert_numpy(sample: Any) -> Any:
    """The worker half of :func:`default_convert`: ember Tensors to NumPy, rest unchanged."""
    if isinstance(sample, _tensor_type()):
        return sample.numpy()
    if isinstance(sample, np.generic):  # NumPy scalars become 0-d tensors, as in PyTorch
        return np.asarray(sample)
    if isinstance(sample, dict):
        return {k: convert_numpy(v) for k, v in sample.items()}
    if _is_namedtuple(sample):
        return type(sample)(*(convert_numpy(v) for v in sample))
    if isinstance(sample, (list, tuple)):
        return type(sample)(convert_numpy(v) for v in sample)
    return sample


def default_convert(sample: Any) -> Any:
    """What the loader does to unbatched samples (``batch_size=None``): arrays to Tensors."""
    return to_tensors(convert_numpy(sample))


class TensorBox:
    """An ember Tensor travelling between processes as a NumPy array (no Tensor pickling)."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array

    def __reduce__(self):
        return (TensorBox, (self.array,))


def pack(tree: Any) -> Any:
    """Worker side of a custom ``collate_fn``: box ember Tensors, leave everything else."""
    if isinstance(tree, _tensor_type()):
        return TensorBox(tree.numpy())
    if isinstance(tree, dict):
        return {k: pack(v) for k, v in tree.items()}
    if _is_namedtuple(tree):
        return type(tree)(*(pack(v) for v in tree))
    if isinstance(tree, (list, tuple)):
        return type(tree)(pack(v) for v in tree)
    return tree


def unpack(tree: Any) -> Any:
    """Main-process side of :func:`pack`: boxed arrays become ember Tensors again."""
    if isinstance(tree, TensorBox):
        import ember

        return ember.from_numpy(tree.array)
    if isinstance(tree, dict):
        return {k: unpack(v) for k, v in tree.items()}
    if _is_namedtuple(tree):
        return type(tree)(*(unpack(v) for v in tree))
    if isinstance(tree, (list, tuple)):
        return type(tree)(unpack(v) for v in tree)
    return tree
