"""``PlotCallback``: rewrite the report page at the end of every epoch, so that a page kept
open in a browser shows the run so far on reload."""

from __future__ import annotations

import os

import numpy as np

from .recorder import RunRecorder

__all__ = ["PlotCallback"]


class PlotCallback(RunRecorder):
    """Write an HTML report of the training so far to ``path`` after every epoch.

    Without ``run_dir`` the callback records the run itself (epoch logs, step losses,
    learning rate, timing); with ``run_dir`` it reads the files there (what ``ember train``
    writes). ``validation_data=(x, y)`` adds a confusion matrix of ``model(x)``'s argmax for
    classifiers whose task does not expose its validation predictions.

    Example:
        >>> import os, tempfile
        >>> from ember.report import PlotCallback
        >>> cb = PlotCallback(os.path.join(tempfile.mkdtemp(), "r.html"))
        >>> cb.on_epoch_end(0, {"loss": 0.9}); os.path.exists(cb.path)
        True
    """

    def __init__(
        self,
        path: str = "report.html",
        run_dir: str | None = None,
        validation_data=None,
        name: str | None = None,
        class_names=None,
    ):
        path = os.fspath(path)
        super().__init__(None, name=name or os.path.splitext(os.path.basename(path))[0])
        self.path, self.run_dir = path, run_dir
        self.validation_data = validation_data
        self.class_names = list(class_names) if class_names is not None else None

    def _predict(self):
        x, y = self.validation_data[0], self.validation_data[1]
        model = self.model
        if hasattr(model, "predict") and hasattr(model, "compile"):  # a keras.Model
            out = np.asarray(model.predict(x, verbose=0))
        else:
            import ember

            with ember.no_grad():
                xt = x if isinstance(x, ember.Tensor) else ember.from_numpy(np.asarray(x))
                was = getattr(model, "training", False)
                model.eval()
                out = model(xt).numpy()
                if was:
                    model.train()
        y = np.asarray(y.numpy() if hasattr(y, "numpy") else y)
        if out.ndim == y.ndim + 1 and out.shape[-1] > 1:
            return out.argmax(-1).ravel(), y.ravel().astype(np.int64)
        return None

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        from .html import write_report
        from .runs import load_run

        if self.run_dir is not None:
            run = load_run(self.run_dir)
        else:
            run = self.run
            if self.validation_data is not None and self.model is not None:
                got = self._predict()
                if got is not None:
                    run.pred, run.target = got
        if self.class_names is not None:
            run.class_names = self.class_names
        write_report([run], self.path)
