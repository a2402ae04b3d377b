"""Progress display: one plain summary line per epoch on stdout (verbose 1 and 2), with a
transient tqdm bar on stderr while the epoch runs (verbose=1, stderr a terminal).

The summary is its own line, so it is never cut at the terminal width, and it arrives as
each epoch ends when stdout is a pipe (CI logs, ``tee``). tqdm is imported lazily; nothing
is shown at ``verbose=0``. Epoch summaries also go to the ``ember.train`` logger.
"""

from __future__ import annotations

import logging
import sys

from .callbacks import Callback

__all__ = ["ProgressBar", "resolve_verbose"]

log = logging.getLogger("ember.train")


def resolve_verbose(verbose) -> int:
    """``'auto'`` is 1 (bar and epoch lines) on a terminal and 2 (epoch lines) otherwise."""
    if verbose == "auto":
        return 1 if _isatty() else 2
    return int(verbose)


def _isatty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _fmt_logs(logs) -> str:
    parts = []
    logs = logs or {}
    for k, v in logs.items():
        # NOTE: a task that logs "train_loss" next to the engine's "loss" shows it once
        if k.startswith("train_") and k[6:] in logs and logs[k[6:]] == v:
            continue
        try:
            parts.append(f"{k}: {float(v):.4f}")
        except (TypeError, ValueError):
            continue
    return " - ".join(parts)


class ProgressBar(Callback):
    """The engine adds one of these when ``verbose`` is not 0."""

    def __init__(self, verbose: int = 1):
        super().__init__()
        self.verbose = verbose
        self._bar = None
        self._epochs = None

    def on_train_begin(self, logs=None):
        self._epochs = self.params.get("epochs")

    def on_epoch_begin(self, epoch, logs=None):
        if self.verbose == 1:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover
                self.verbose = 2
                return
            self._bar = tqdm(
                total=self.params.get("steps"),
                disable=None,
                leave=False,
                desc=f"Epoch {epoch + 1}/{self._epochs}",
                unit="step",
                file=sys.stderr,
                dynamic_ncols=True,
            )

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix_str(_fmt_logs(logs), refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        line = _fmt_logs(logs)
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        print(f"Epoch {epoch + 1}/{self._epochs} - {line}", file=sys.stdout, flush=True)
        log.info("epoch %d: %s", epoch + 1, line)

    def on_train_end(self, logs=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
