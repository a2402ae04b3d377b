"""Full training checkpoints: model, optimizers, schedulers, RNG states and position.

A checkpoint is one file written by ``ember.save`` (safetensors tensors + a JSON structure,
written atomically: temporary file, fsync, rename). Loading it into fresh objects and
calling ``fit`` again continues the run exactly where it stopped: same data order, same
dropout masks, same optimizer moments — on CPU the resumed run is bitwise identical to the
uninterrupted one.

Example:
    >>> import ember, tempfile, os
    >>> from ember.train import save_weights, load_weights
    >>> m = ember.nn.Linear(2, 1)
    >>> p = os.path.join(tempfile.mkdtemp(), "w.ember")
    >>> save_weights(m, p); load_weights(ember.nn.Linear(2, 1), p) is None
    True
"""

from __future__ import annotations

import os

import ember

__all__ = [
    "CHECKPOINT_FORMAT",
    "load_checkpoint",
    "load_weights",
    "save_checkpoint",
    "save_weights",
]

CHECKPOINT_FORMAT = "ember.train.checkpoint/1"


def _save(obj, path) -> None:
    ember.save(obj, os.fspath(path))


def _load(path):
    return ember.load(os.fspath(path))


def _scheduler_states(engine):
    out = []
    for i, s in enumerate(engine.schedulers):
        sch = s["scheduler"]
        if not (callable(getattr(sch, "state_dict", None)) and hasattr(sch, "load_state_dict")):
            # NOTE: saving nothing would restart its schedule on resume, silently
            raise TypeError(
                f"save_checkpoint: scheduler #{i} ({type(sch).__name__}) has no "
                "state_dict/load_state_dict, so a checkpoint cannot resume it"
            )
        out.append(sch.state_dict())
    return out


def checkpoint_state(engine, epoch: int | None = None, extra: dict | None = None) -> dict:
    """The dict that :func:`save_checkpoint` writes. Inside an epoch (from a batch hook) it
    records the position, and resuming replays that epoch's data order from there."""
    position = engine.position() if epoch is None else None
    if position is not None:
        epoch = engine.epoch
    state = {
        "format": CHECKPOINT_FORMAT,
        "model": engine.model.state_dict() if engine.model is not None else {},
        "optimizers": [opt.state_dict() for opt in engine.optimizers],
        "schedulers": _scheduler_states(engine),
        "optimizer_types": [type(o).__name__ for o in engine.optimizers],
        "scheduler_types": [type(s["scheduler"]).__name__ for s in engine.schedulers],
        "rng": {"ember": ember.random.get_rng_state(), "data": engine.data_rng_state()},
        "epoch": int(engine.epoch + 1 if epoch is None else epoch),
        "global_step": int(engine.global_step),
        "callbacks": engine.callbacks_state(),
        "extra": dict(extra or {}),
    }
    if position is not None:
        state["position"] = position
    return state


def save_checkpoint(path, engine, epoch: int | None = None, extra: dict | None = None) -> None:
    """Write a full checkpoint of ``engine`` (atomically). ``epoch`` is the next epoch to run
    (the number of epochs done); leave it None inside an epoch to record the position."""
    if extra is None:
        hook = getattr(engine.model, "_checkpoint_extra", None)
        extra = hook() if callable(hook) else None
    _save(checkpoint_state(engine, epoch, extra), path)


def load_checkpoint(path) -> dict:
    """Read a full checkpoint written by :func:`save_checkpoint`; ``Engine.restore`` (or
    ``fit(..., resume_from=path)`` / ``Trainer.fit(..., ckpt_path=path)``) applies it."""
    state = _load(path)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{os.fspath(path)!r} is not an ember training checkpoint "
            f"(expected format {CHECKPOINT_FORMAT!r})"
        )
    return state


def save_weights(model, path) -> None:
    """Write ``model.state_dict()`` (atomically)."""
    _save({"format": "ember.weights/1", "model": model.state_dict()}, path)


def load_weights(model, path, strict: bool = True) -> None:
    """Load weights written by :func:`save_weights` (or the model part of a checkpoint)."""
    state = _load(path)
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{os.fspath(path)!r} holds no model weights")
    model.load_state_dict(state["model"], strict=strict)
