"""``ZeroRedundancyOptimizer``: ZeRO stage 1, optimizer state sharded across ranks.

Every rank keeps the full model and (with DDP) the same averaged gradients, but only the
parameters it owns get an optimizer (and optimizer state). After each local step the owners
broadcast their updated parameters, so every rank ends the step with the same weights as
plain data-parallel training, while holding about ``1/world_size`` of the state.
"""

from __future__ import annotations

import numpy as np

from .. import distributed as dist
from .._tensor import Tensor, _new
from .optimizer import Optimizer

__all__ = ["ZeroRedundancyOptimizer"]


class ZeroRedundancyOptimizer(Optimizer):
    """Wrap ``optimizer_class`` so that each rank holds the state of its parameter shard.

    Parameters are assigned largest first to the rank with the fewest elements so far
    (the same on every rank). ``param_groups`` lists all parameters, so LR schedulers and
    ``zero_grad`` work as usual; options changed there reach the local optimizer at
    the next ``step``.

    Example:
        >>> import ember, ember.distributed as dist  # doctest: +SKIP
        >>> from ember.optim.zero import ZeroRedundancyOptimizer  # doctest: +SKIP
        >>> Zero = ZeroRedundancyOptimizer  # doctest: +SKIP
        >>> opt = Zero(model.parameters(), ember.optim.Adam, lr=1e-3)  # doctest: +SKIP
        >>> opt.state_memory_bytes()  # this rank's share of Adam's state  # doctest: +SKIP
    """

    def __init__(self, params, optimizer_class: type, process_group=None, **defaults):
        if not (isinstance(optimizer_class, type) and issubclass(optimizer_class, Optimizer)):
            raise TypeError(
                "ZeroRedundancyOptimizer: optimizer_class must be an ember Optimizer class, got "
                f"{optimizer_class!r}"
            )
        if not dist.is_initialized():
            raise RuntimeError(
                "ZeroRedundancyOptimizer: call ember.distributed.init_process_group() first"
            )
        super().__init__(params, defaults)
        self.optimizer_class = optimizer_class
        self.process_group = process_group
        self.rank = dist.get_rank(process_group)
        self.world_size = dist.get_world_size(process_group)
        self._owner = self._partition()
        local_groups, self._local_index = [], []
        for gi, group in enumerate(self.param_groups):
            mine = [p for p in group["params"] if self._owner[id(p)] == self.rank]
            if mine:
                opts = {k: v for k, v in group.items() if k != "params"}
                local_groups.append({**opts, "params": mine})
                self._local_index.append(gi)
        self.optim = optimizer_class(local_groups, **defaults) if local_groups else None
        # ``state`` is this rank's shard (as in PyTorch)
        self.state = self.optim.state if self.optim is not None else {}

    def _partition(self) -> dict[int, int]:
        owner: dict[int, int] = {}
        sizes = [0] * self.world_size
        for group in self.param_groups:
            order = sorted(group["params"], key=lambda p: -p.numel())  # stable: ties keep order
            for p in order:
                r = sizes.index(min(sizes))
                owner[id(p)] = r
                sizes[r] += p.numel()
        return owner

    def owned_parameters(self, rank: int | None = None) -> list[Tensor]:
        """The parameters whose optimizer state lives on ``rank`` (default: this rank)."""
        r = self.rank if rank is None else rank
        return [p for g in self.param_groups for p in g["params"] if self._owner[id(p)] == r]

    def _update(self) -> None:
        if self.optim is not None:
            for local, gi in zip(self.optim.param_groups, self._local_index):
                for k, v in self.param_groups[gi].items():
                    if k != "params":
                        local[k] = v
            self.optim.step()
        # every parameter leaves its owner in the same order on every rank
        works = [
            dist.broadcast(p, self._owner[id(p)], self.process_group, async_op=True)
            for g in self.param_groups
            for p in g["params"]
        ]
        for w in works:
            w.wait()

    def add_param_group(self, param_group) -> None:
        if getattr(self, "optim", None) is not None:
            raise NotImplementedError(
                "ZeroRedundancyOptimizer: adding parameter groups after construction is not "
                "supported yet"
            )
        super().add_param_group(param_group)

    def state_memory_bytes(self) -> int:
        """Bytes of optimizer state (tensors) held by this rank."""
        return sum(
            v._data.nbytes
            for st in self.state.values()
            for v in st.values()
            if isinstance(v, Tensor)
        )

    def state_memory_per_rank(self) -> list[int]:
        """:meth:`state_memory_bytes` of every rank (a collective: call it on all ranks)."""
        mine = _new(np.array([self.state_memory_bytes()], np.int64))
        out = _new(np.zeros(self.world_size, np.int64))
        dist.all_gather_into_tensor(out, mine, self.process_group)
        return [int(v) for v in out._data]

    def state_dict(self):
        raise NotImplementedError(
            "ZeroRedundancyOptimizer.state_dict: the sharded state is not consolidated yet; "
            "checkpoint the model, or each rank's shard with .optim.state_dict()"
        )

    def load_state_dict(self, state_dict) -> None:
        raise NotImplementedError(
            "ZeroRedundancyOptimizer.load_state_dict: not supported yet; load each rank's "
            "shard with .optim.load_state_dict()"
        )
