"""Run reports: one offline HTML page (and PNG files) with a training run's curves, learning
rate, timing, config diff, final metrics and a classifier's confusion matrix; ``ember report``
on the command line. Drawing needs matplotlib (the ``[report]`` extra).

Example:
    >>> import os, tempfile
    >>> from ember.report import Run, write_report
    >>> run = Run("demo", epoch=[0, 1, 2], epochs={"loss": [1.0, 0.6, 0.4]})
    >>> path = write_report([run], os.path.join(tempfile.mkdtemp(), "report.html"))
    >>> "<svg" in open(path).read()
    True
"""

from .callback import PlotCallback
from .html import render_html, write_pngs, write_report
from .recorder import RunRecorder
from .runs import Run, RunError, from_history, load_run

__all__ = [
    "PlotCallback",
    "Run",
    "RunError",
    "RunRecorder",
    "from_history",
    "load_run",
    "render_html",
    "write_pngs",
    "write_report",
]
