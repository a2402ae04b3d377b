"""Ember's primitives and the op functions built on them.

``ember.ops.registry()`` lists every primitive with its kind, abstract rule and VJP;
tools (the tracer, exporters, the op test harness) walk it.
"""

from ._core import REGISTRY, AbstractValue, Primitive, ShapeError, bind, registry  # noqa: F401
from .activation import elu, gelu, leaky_relu, silu, softplus  # noqa: F401
from .elementwise import *
from .elementwise import broadcast_shapes, convert  # noqa: F401
from .indexing import (  # noqa: F401  # noqa: F401
    argsort,
    argwhere,
    gather,
    getitem,
    index_add,
    index_fill,
    index_put_value,
    index_select,
    kthvalue,
    masked_fill,
    masked_select,
    msort,
    nonzero,
    scatter,
    scatter_add,
    sort,
    take,
    take_along_dim,
    topk,
    unique,
)
from .linalg import bmm, dot, einsum, matmul, mm, outer  # noqa: F401
from .reduction import (  # noqa: F401
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    count_nonzero,
    log_softmax,
    logsumexp,
    max,
    mean,
    min,
    norm,
    prod,
    softmax,
    std,
    std_mean,
    sum,
    sum_to,
    var,
    var_mean,
)
from .scan import cumprod, cumsum  # noqa: F401
from .shape import (  # noqa: F401  # noqa: F401
    broadcast_tensors,
    broadcast_to,
    cat,
    chunk,
    concat,
    concatenate,
    diagonal,
    expand,
    flatten,
    flip,
    fliplr,
    flipud,
    meshgrid,
    movedim,
    narrow,
    permute,
    repeat_interleave,
    reshape,
    roll,
    split,
    squeeze,
    stack,
    swapaxes,
    swapdims,
    t,
    tile,
    transpose,
    tril,
    triu,
    unbind,
    unflatten,
    unsqueeze,
    view,
)
