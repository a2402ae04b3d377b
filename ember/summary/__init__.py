"""TensorBoard event files: ``SummaryWriter`` (PyTorch's API), readable by the real
``tensorboard``. Needs the ``ember[tensorboard]`` extra for the protobuf classes.

    >>> from ember.summary import SummaryWriter
    >>> with SummaryWriter("runs/exp1") as w:               # doctest: +SKIP
    ...     for step in range(10):
    ...         w.add_scalar("loss", 1.0 / (step + 1), step)
"""

from ._record import crc32c, masked_crc32c
from .writer import SummaryWriter, build_graph_def

__all__ = ["SummaryWriter", "build_graph_def", "crc32c", "masked_crc32c"]
