"""``ZeroRedundancyOptimizer``: ZeRO stage 1, optimizer state sharded across ranks.

Every rank keeps the full model and (with DDP) the same averaged gradients, but only the
parameters it owns get an optimizer (and optimizer state). After each local step the owners
broadcast their updated parameters, so every rank ends the step with the same weights as
plain data-parallel training, while holding about ``1/world_size`` of the state.
:meth:`ZeroRedundancyOptimizer.consolidate_state_dict` gathers the shards on one rank for a
checkpoint; :meth:`~ZeroRedundancyOptimizer.load_state_dict` takes that whole state on any
number of ranks.
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
        if process_group is dist.GroupMember.NON_GROUP_MEMBER:
            raise ValueError(
                "ZeroRedundancyOptimizer: this rank is not a member of process_group; create "
                "the optimizer only on the group's members"
            )
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
        self._consolidated: dict | None = None

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
        self._consolidated = None  # the state changes: an earlier consolidation is stale
        if self.optim is not None:
            for local, gi in zip(self.optim.param_groups, self._local_index):
                for k, v in self.param_groups[gi].items():
                    if k != "params":
                        local[k] = v
            self.optim.step()
        # every parameter leaves its owner in the same order on every rank
        works = [
            dist.broadcast(p, group=self.process_group, async_op=True, group_src=self._owner[id(p)])
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

    def consolidate_state_dict(self, to: int = 0) -> None:
        """Collect every rank's shard of the optimizer state on rank ``to`` (a rank of the
        process group), where :meth:`state_dict` then returns the whole state. A
        collective: every rank calls it.

        Example:
            >>> opt.consolidate_state_dict(to=0)  # doctest: +SKIP
            >>> if dist.get_rank() == 0:  # doctest: +SKIP
            ...     ember.save(opt.state_dict(), "optim.ember")
        """
        if isinstance(to, bool) or not isinstance(to, int) or not 0 <= to < self.world_size:
            raise ValueError(
                f"consolidate_state_dict: to must be a rank in [0, {self.world_size - 1}], "
                f"got {to!r}"
            )
        index = self._global_index()
        mine = {}
        if self.optim is not None:
            for st_p, st in self.optim.state.items():
                if st:
                    mine[index[id(st_p)]] = dict(st)
        shards: list | None = [None] * self.world_size if self.rank == to else None
        dist.gather_object(mine, shards, group=self.process_group, group_dst=to)
        self._consolidated = None
        if shards is not None:
            state: dict = {}
            for shard in shards:
                state.update(shard)
            groups = []
            for group in self.param_groups:
                packed = {k: v for k, v in group.items() if k != "params"}
                packed["params"] = [index[id(p)] for p in group["params"]]
                groups.append(packed)
            self._consolidated = {"state": dict(sorted(state.items())), "param_groups": groups}

    def _global_index(self) -> dict[int, int]:
        index: dict[int, int] = {}
        for group in self.param_groups:
            for p in group["params"]:
                index.setdefault(id(p), len(index))
        return index

    def state_dict(self):
        """The whole optimizer state, in the wrapped optimizer's format (parameters numbered
        across all groups), on the rank that :meth:`consolidate_state_dict` sent it to."""
        if getattr(self, "_consolidated", None) is None:
            raise RuntimeError(
                "ZeroRedundancyOptimizer.state_dict: the optimizer state has not been "
                "consolidated on this rank (or has changed since); call "
                "consolidate_state_dict(to=RANK) on every rank first, then state_dict() on RANK"
            )
        return self._consolidated

    def load_state_dict(self, state_dict) -> None:
        """Load a whole state (from :meth:`state_dict`, or from the wrapped optimizer class
        over the same parameters) on every rank; each keeps the shard of its parameters."""
        if (
            not isinstance(state_dict, dict)
            or "state" not in state_dict
            or "param_groups" not in state_dict
        ):
            raise ValueError(
                "optimizer state dict must be a dict with keys 'state' and 'param_groups'"
            )
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has {len(saved)} parameter groups, but the optimizer has "
                f"{len(self.param_groups)}"
            )
        by_index: dict[int, Tensor] = {}
        for gi, (group, sg) in enumerate(zip(self.param_groups, saved)):
            if len(group["params"]) != len(sg["params"]):
                raise ValueError(
                    f"loaded state dict contains a parameter group (#{gi}) with "
                    f"{len(sg['params'])} parameters that doesn't match the size of "
                    f"optimizer's group ({len(group['params'])} parameters)"
                )
            for old, p in zip(sg["params"], group["params"]):
                by_index[int(old)] = p
            for k, v in sg.items():
                if k != "params":
                    group[k] = v
        if self.optim is None:
            return
        local_index = {
            id(p): i for i, p in enumerate(p for g in self.optim.param_groups for p in g["params"])
        }
        local_state = {}
        for k, st in state_dict["state"].items():
            p = by_index.get(int(k))
            if p is None:
                raise ValueError(
                    f"loaded optimizer state refers to parameter {k!r}, which is not in any "
                    "parameter group"
                )
            if id(p) in local_index:
                local_state[local_index[id(p)]] = st
        local_groups = []
        for local, gi in zip(self.optim.param_groups, self._local_index):
            # the local optimizer's own options (e.g. Adam's amsgrad) under the loaded ones
            opts = {k: v for k, v in local.items() if k != "params"}
            opts.update({k: v for k, v in self.param_groups[gi].items() if k != "params"})
            local_groups.append({**opts, "params": [local_index[id(p)] for p in local["params"]]})
        self.optim.load_state_dict({"state": local_state, "param_groups": local_groups})
        self.state = self.optim.state
        self._consolidated = None
