"""Progress display: a transient tqdm bar per epoch on a terminal (verbose=1) or one plain
line per epoch on stdout (verbose=2; ``'auto'`` when stderr is not a terminal).

Each epoch's summary is a line of its own (never cut at the terminal width): under the bar
on the terminal, and also on stdout when only stdout is piped (``ember train ... | tee``).
tqdm is imported lazily; nothing is shown at ``verbose=0``, nor at ``verbose=1`` with no
terminal at all. Epoch summaries also go to the ``ember.train`` logger.
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


def _isatty(stream=None) -> bool:
    try:
        return (stream or sys.stderr).isatty()
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
        text = f"Epoch {epoch + 1}/{self._epochs} - {line}"
        if self._bar is not None:
            self._bar.refresh()  # the finished count (n/n) before the bar gives way to the line
            self._bar.close()
            self._bar = None
        if self.verbose == 2:
            print(text, file=sys.stdout, flush=True)
        elif _isatty(sys.stderr):
            print(text, file=sys.stderr, flush=True)
            if not _isatty(sys.stdout):  # piped (tee, a log file) while watching the bar
                print(text, file=sys.stdout, flush=True)
        log.info("epoch %d: %s", epoch + 1, line)

    def on_train_end(self, logs=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
