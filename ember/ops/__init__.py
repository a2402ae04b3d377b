"""Ember's primitives and the op functions built on them.

``ember.ops.registry()`` lists every primitive with its kind, abstract rule and VJP;
tools (the tracer, exporters, the op test harness) walk it.
"""

from ._core import (REGISTRY, AbstractValue, Primitive, ShapeError, bind,  # noqa: F401
                    registry)
from .elementwise import *  # noqa: F401,F403
from .elementwise import broadcast_shapes, convert  # noqa: F401
from .indexing import getitem, index_put_value  # noqa: F401
from .linalg import bmm, dot, einsum, matmul, mm, outer  # noqa: F401
from .reduction import (all, amax, amin, any, argmax, argmin, count_nonzero,  # noqa: F401
                        log_softmax, logsumexp, max, mean, min, norm, prod, softmax, std,
                        std_mean, sum, sum_to, var, var_mean)
from .shape import (broadcast_tensors, broadcast_to, cat, chunk, concat,  # noqa: F401
                    concatenate, expand, flatten, movedim, narrow, permute, reshape, split,
                    squeeze, stack, swapaxes, swapdims, t, transpose, unbind, unflatten,
                    unsqueeze, view)
from .indexing import (argsort, argwhere, gather, index_add, index_fill,  # noqa: F401
                       index_select, kthvalue, masked_fill, masked_select, msort, nonzero,
                       scatter, scatter_add, sort, take, take_along_dim, topk, unique)
from .scan import cumprod, cumsum  # noqa: F401
from .shape import (diagonal, flip, fliplr, flipud, meshgrid, repeat_interleave,  # noqa: F401
                    roll, tile, tril, triu)
