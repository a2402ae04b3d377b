"""``ember report`` (an HTML report of runs, PNG figures) and ``ember summary`` (a model's
layer table and diagram)."""

from __future__ import annotations

import os
import sys

__all__ = ["add_parsers", "cmd_report", "cmd_summary"]


def add_parsers(sub) -> None:
    """Add the ``report`` and ``summary`` subcommands to ``ember``'s parser."""
    r = sub.add_parser("report", help="an offline HTML report of one or more training runs")
    r.add_argument("runs", nargs="+", metavar="RUN", help="run folders (runs/NAME)")
    r.add_argument("-o", "--output", default="report.html", help="the HTML file to write")
    r.add_argument("--png", metavar="DIR", help="also write every figure as DIR/<name>.png")
    r.add_argument("--title", help="the page title")
    r.set_defaults(func=cmd_report)
    s = sub.add_parser("summary", help="the layer table of a config's or model file's model")
    s.add_argument("target", help="a config file (.yaml) or a model file written by train")
    s.add_argument("--plot", metavar="FILE", help="also draw the model (.png, .svg, .dot)")
    s.set_defaults(func=cmd_summary)


def cmd_report(a) -> None:
    from ember.report import load_run, write_pngs, write_report
    from ember.report.runs import LOG_FILES, RunError

    runs, names = [], set()
    for path in a.runs:
        run = load_run(path)
        if run.name in names:  # runs/a/x and runs/b/x: tell them apart
            run.name = os.path.normpath(path)
        names.add(run.name)
        runs.append(run)
        for p in run.problems:
            print(f"ember report: warning: {run.name}: {p}", file=sys.stderr)
    if all(r.empty for r in runs):
        raise RunError(
            f"no training logs ({', '.join(LOG_FILES)}) in "
            + ", ".join(a.runs)
            + "; give folders written by `ember train` (runs/NAME)"
        )
    print(f"wrote {write_report(runs, a.output, a.title)}")
    if a.png:
        files = write_pngs(runs, a.png)
        print(f"wrote {len(files)} PNG files to {a.png}")


def cmd_summary(a) -> None:
    import ember
    from ember.utils.plot_model_graph import plot_model, summary_table

    from . import run
    from .config import load_config

    if a.target.endswith((".yaml", ".yml")):
        cfg = load_config(a.target)
        model, _, spec = run._setup(cfg, a.target)
    else:
        model, cfg, spec = run.load_model(a.target)
    dtype = getattr(ember, spec.get("dtype", "float32"), ember.float32)
    x = ember.zeros((1, *spec["shape"]), dtype=dtype)
    print(summary_table(model, example_input=x))
    if a.plot:
        plot_model(model, a.plot, example_input=x)
        print(f"wrote {a.plot}")
