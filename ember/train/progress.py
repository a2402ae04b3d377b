"""Progress display: a tqdm bar per epoch (verbose=1) or one line per epoch (verbose=2).

tqdm is imported lazily; the bar is quiet when stderr is not a terminal (tqdm's
``disable=None``) and nothing is shown at ``verbose=0``. Epoch summaries also go to the
``ember.train`` logger.
"""

from __future__ import annotations

import logging
import sys

from .callbacks import Callback

__all__ = ["ProgressBar", "resolve_verbose"]

log = logging.getLogger("ember.train")


def resolve_verbose(verbose) -> int:
    """``'auto'`` is 1 on a terminal and 0 otherwise (as Keras in a non-interactive run)."""
    if verbose == "auto":
        return 1 if _isatty() else 0
    return int(verbose)


def _isatty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _fmt_logs(logs) -> str:
    parts = []
    for k, v in (logs or {}).items():
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
                leave=True,
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
            self._bar.set_postfix_str(line, refresh=True)
            self._bar.close()
            self._bar = None
        elif self.verbose == 2:
            print(f"Epoch {epoch + 1}/{self._epochs} - {line}", file=sys.stdout, flush=True)
        log.info("epoch %d: %s", epoch + 1, line)

    def on_train_end(self, logs=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
