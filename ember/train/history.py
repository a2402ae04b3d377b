"""``History``: the per-epoch logs of a ``fit`` run (``history.history['val_loss']``)."""

from __future__ import annotations

from .callbacks import Callback

__all__ = ["History"]


class History(Callback):
    """Records each epoch's logs; ``fit`` returns it.

    Example:
        >>> h = History(); h.on_train_begin(); h.on_epoch_end(0, {"loss": 1.0})
        >>> h.history, h.epoch
        ({'loss': [1.0]}, [0])
    """

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        if self.engine is None or not getattr(self.engine, "resumed", False):
            self.history, self.epoch = {}, []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def state_dict(self):
        history = {k: list(v) for k, v in self.history.items()}
        epochs = list(self.epoch)
        eng = self.engine
        # NOTE: a checkpoint written by another callback at the end of an epoch comes before
        # this one records that epoch: include it so that the resumed history is complete.
        if (
            eng is not None
            and eng.epoch_logs is not None
            and (not epochs or epochs[-1] != eng.epoch)
        ):
            epochs.append(eng.epoch)
            for k, v in eng.epoch_logs.items():
                history.setdefault(k, []).append(v)
        return {"history": history, "epoch": epochs}

    def load_state_dict(self, state):
        self.history = {k: list(v) for k, v in state.get("history", {}).items()}
        self.epoch = list(state.get("epoch", []))
