"""The :class:`Optimizer` base class: parameter groups, per-parameter state, state dicts.

Subclasses validate their hyperparameters, create state lazily on the first step and call
the pure update functions in :mod:`ember.optim._functional`.
"""

from __future__ import annotations

import copy
from collections import OrderedDict, defaultdict

from .._tensor import Tensor

__all__ = ["Optimizer", "required"]


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


class _Handle:
    __slots__ = ("key", "store")

    def __init__(self, store, key):
        self.store, self.key = store, key

    def remove(self):
        self.store.pop(self.key, None)


class Optimizer:
    """Base class of all optimizers (``torch.optim.Optimizer`` semantics).

    Args:
        params: an iterable of Tensors, or of dicts ``{'params': [...], <option>: value}``
            (parameter groups with their own options).
        defaults: default values of the options, used by groups that don't set them.
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = defaultdict(dict)
        self.param_groups = []
        self._step_pre_hooks = OrderedDict()
        self._step_post_hooks = OrderedDict()
        self._hook_id = 0
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of "
                "Tensors or dicts, but got a Tensor"
            )
        if isinstance(params, dict):
            params = [params]
        elif callable(getattr(params, "named_parameters", None)):
            raise TypeError(
                f"{type(self).__name__}: params should be an iterable of Tensors or dicts, "
                f"but got a {type(params).__name__} module; pass model.parameters()"
            )
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(group):
                if k != "params":
                    lines.append(f"    {k}: {group[k]}")
        lines.append(")")
        return "\n".join(lines)

    # -- groups --------------------------------------------------------------------------
    def add_param_group(self, param_group):
        """Add a group of parameters (a dict with ``'params'`` and optional options)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise KeyError(
                f"param_group must have a 'params' entry (the tensors to optimize), got "
                f"keys {sorted(param_group)}"
            )
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, "
                "but the ordering of tensors in sets will change between runs. "
                "Please use a list instead."
            )
        else:
            param_group["params"] = list(params)
        for p in param_group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(
                    "optimizer can only optimize Tensors, but one of the params is "
                    f"{type(p).__name__}"
                )
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(
                    f"parameter group didn't specify a value of required "
                    f"optimization parameter {name}"
                )
            param_group.setdefault(name, default)
        ids = {id(p) for p in param_group["params"]}
        if len(ids) != len(param_group["params"]):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        for group in self.param_groups:
            if ids & {id(p) for p in group["params"]}:
                raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # -- gradients -----------------------------------------------------------------------
    def zero_grad(self, set_to_none=True):
        """Reset the gradients of all parameters (to None, or to zeros in place)."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if g._node is not None:
                        g = g.detach()
                        p.grad = g
                    g.requires_grad = False
                    g.zero_()

    def step(self, closure=None):
        """Perform one update; ``closure`` re-evaluates the model and returns the loss.

        Runs the step hooks around ``_update``, which each algorithm defines."""
        return self._run_step(closure)

    def _update(self):
        raise NotImplementedError(f"{type(self).__name__} must define _update()")

    # -- hooks ---------------------------------------------------------------------------
    def register_step_pre_hook(self, hook):
        """``hook(optimizer, args, kwargs)`` runs before each ``step``; returns a handle."""
        self._hook_id += 1
        self._step_pre_hooks[self._hook_id] = hook
        return _Handle(self._step_pre_hooks, self._hook_id)

    def register_step_post_hook(self, hook):
        """``hook(optimizer, args, kwargs)`` runs after each ``step``; returns a handle."""
        self._hook_id += 1
        self._step_post_hooks[self._hook_id] = hook
        return _Handle(self._step_post_hooks, self._hook_id)

    def _run_step(self, closure):
        for hook in list(self._step_pre_hooks.values()):
            hook(self, (), {})
        loss = None
        if closure is not None:
            from ..autograd import enable_grad

            with enable_grad():
                loss = closure()
        self._update()
        for hook in list(self._step_post_hooks.values()):
            hook(self, (), {})
        return loss

    # -- state dicts ---------------------------------------------------------------------
    def state_dict(self):
        """``{'state': {index: {...}}, 'param_groups': [{..., 'params': [indices]}]}``.

        Parameters are numbered in order across groups; state tensors are returned by
        reference (as in PyTorch)."""
        index = {}
        groups = []
        start = 0
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                index.setdefault(id(p), i)
            packed["params"] = [index[id(p)] for p in group["params"]]
            start += len(packed["params"])
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state.get(p)
                if st:
                    state[index[id(p)]] = dict(st)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Load a dict from :meth:`state_dict` (validates the group and parameter counts)."""
        if (
            not isinstance(state_dict, dict)
            or "state" not in state_dict
            or "param_groups" not in state_dict
        ):
            raise ValueError(
                "optimizer state dict must be a dict with keys 'state' and 'param_groups'"
            )
        groups = self.param_groups
        saved_groups = state_dict["param_groups"]
        if len(groups) != len(saved_groups):
            raise ValueError(
                f"loaded state dict has {len(saved_groups)} parameter groups, but "
                f"the optimizer has {len(groups)}"
            )
        for gi, (g, sg) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError(
                    f"loaded state dict contains a parameter group (#{gi}) with "
                    f"{len(sg['params'])} parameters that doesn't match the size of "
                    f"optimizer's group ({len(g['params'])} parameters)"
                )
        id_map = {}
        for g, sg in zip(groups, saved_groups):
            for old, p in zip(sg["params"], g["params"]):
                id_map[old] = p
        state = defaultdict(dict)
        for k, v in state_dict["state"].items():
            key = k
            if key not in id_map:
                try:
                    key = int(k)
                except (TypeError, ValueError):
                    key = k
            if key not in id_map:
                raise ValueError(
                    f"loaded optimizer state refers to parameter {k!r}, which is "
                    "not in any parameter group"
                )
            p = id_map[key]
            state[p] = {name: self._cast_state(p, name, val) for name, val in v.items()}
        new_groups = []
        for g, sg in zip(groups, saved_groups):
            ng = {k: copy.deepcopy(v) for k, v in sg.items() if k != "params"}
            ng["params"] = g["params"]
            new_groups.append(ng)
        self.state = state
        self.param_groups = new_groups

    @staticmethod
    def _cast_state(p, name, value):
        if isinstance(value, Tensor):
            value = value.detach()
            if name == "step":
                return value.clone() if value.is_floating_point() else value.float()
            if value.ndim and tuple(value.shape) != tuple(p.shape):
                raise ValueError(
                    f"optimizer state {name!r} has shape {tuple(value.shape)} but "
                    f"its parameter has shape {tuple(p.shape)}"
                )
            if value.is_floating_point() and value.dtype is not p.dtype:
                return value.to(dtype=p.dtype).clone()
            return value.clone()
        return copy.deepcopy(value)


def _group_state(state, params, init):
    """The per-parameter state tensors named in ``init`` plus the float32 ``step`` counter,
    as lists in ``params``' order (``{"step": [...], name: [...]}``); a parameter without
    state gets ``step`` 0 and ``init[name](p)`` for each name, in ``init``'s order (PyTorch's
    state keys and order)."""
    from .. import _creation
    from .. import _dtype as dt

    out: dict = {"step": [], **{k: [] for k in init}}
    for p in params:
        st = state[p]
        if not st:
            st["step"] = _creation.tensor(0.0, dtype=dt.float32)
            for k, make in init.items():
                st[k] = make(p)
        for k, lst in out.items():
            lst.append(st[k])
    return out


def _check_params_have_grad(group):
    params, grads = [], []
    for p in group["params"]:
        g = p.grad
        if g is not None:
            if not isinstance(g, Tensor) or g._data.shape != p._data.shape:
                _bad_grad(p, g)
            params.append(p)
            grads.append(g)
    return params, grads


def _bad_grad(p, g):
    """A ``.grad`` assigned by hand that does not fit its parameter (the update would
    broadcast it or fail deep in a kernel)."""
    if not isinstance(g, Tensor):
        raise TypeError(
            f"optimizer step: a parameter of shape {tuple(p.shape)} has a .grad of type "
            f"{type(g).__name__}; expected a Tensor or None"
        )
    raise ValueError(
        f"optimizer step: a parameter of shape {tuple(p.shape)} has a .grad of shape "
        f"{tuple(g.shape)}; the gradient must have the parameter's shape"
    )
