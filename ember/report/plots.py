"""The report's figures, drawn with matplotlib's object API (no pyplot: no global state, safe
inside a training callback). Each function returns a ``Figure`` or ``None`` when no run has
the data."""

from __future__ import annotations

import io
import math
from typing import Literal

import numpy as np

from .runs import Run

__all__ = ["confusion", "epoch_curves", "figure_png", "figure_svg", "lr_curves", "metric_names"]

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
MAX_POINTS = 1500  # per curve: a long run's step curves are thinned to this many points


def _figure(w=5.2, h=3.2, layout: Literal["constrained"] | None = None):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "ember report draws with matplotlib: pip install 'ember[report]' (or matplotlib)"
        ) from None
    return Figure(figsize=(w, h), layout=layout)


def _label_pt(labels) -> float:
    """Width in points of the widest visible tick label (about 0.6 em per character)."""
    widths = [
        len(t.get_text()) * 0.6 * t.get_fontsize()
        for t in labels
        if t.get_visible() and t.get_text()
    ]
    return max(widths, default=0.0)


def _fit(fig) -> None:
    """Margins for a row of line plots, from their tick labels' lengths.

    Matplotlib's constrained layout measures every label's extent (about 40% of a report's
    CPU); line plots only need room for the y tick labels and the axis labels, which the
    label strings give without measuring them. The confusion matrix, whose class names can
    be anything, keeps constrained layout."""
    axes = fig.axes
    w, h = fig.get_size_inches()
    fs = axes[0].xaxis.label.get_fontsize()
    lefts = [(_label_pt(ax.get_yticklabels()) + 7 + 1.6 * fs) / 72 for ax in axes]
    top = 0.12 + (0.2 if any(ax.yaxis.get_offset_text().get_text() for ax in axes) else 0)
    bottom = (2.9 * fs + 10) / 72
    right = 0.18
    # each axes gets an equal share of the width after its own left margin
    inner = (w - sum(lefts) - right) / len(axes)
    x = 0.0
    for ax, left in zip(axes, lefts, strict=True):
        x += left
        ax.set_position([x / w, bottom / h, inner / w, 1 - (bottom + top) / h])
        x += inner


def color(i: int) -> str:
    return _COLORS[i % len(_COLORS)]


def metric_names(runs: list[Run]) -> list[str]:
    """Base metric names over all runs (``loss`` first; ``val_x`` counts as ``x``)."""
    names: list[str] = []
    for r in runs:
        for k in r.epochs:
            base = k[4:] if k.startswith("val_") else k
            if base not in names:
                names.append(base)
    return sorted(names, key=lambda n: (n != "loss", "loss" not in n, n))


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= MAX_POINTS:
        return x, y
    idx = np.linspace(0, len(x) - 1, MAX_POINTS).astype(np.int64)
    return x[idx], y[idx]


def _finish(ax, xlabel, ylabel, log=False):
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if log:
        from matplotlib.ticker import LogFormatter

        ax.set_yscale("log")

        # plain numbers ("0.5", "10"): the default 10^k labels need mathtext, whose parser
        # costs a cold report a few tenths of a second
        class Plain(LogFormatter):  # LogFormatter picks the ticks to label; "%g" writes them
            def __call__(self, x, pos=None):
                return f"{x:g}" if super().__call__(x, pos) else ""

        ax.yaxis.set_major_formatter(Plain())
        ax.yaxis.set_minor_formatter(Plain(labelOnlyBase=False, minor_thresholds=(1, 0.4)))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", frameon=False)


def epoch_curves(runs: list[Run], metric: str):
    """Train (solid) and validation (dashed) values of ``metric`` per epoch, runs overlaid."""
    fig = _figure()
    ax = fig.add_subplot()
    drawn = False
    for i, r in enumerate(runs):
        x = np.asarray(r.epoch, dtype=np.float64) + 1  # epochs counted from 1, as printed
        for key, style, tag in ((metric, "-", "train"), (f"val_{metric}", "--", "val")):
            y = np.asarray(r.epochs.get(key, []), dtype=np.float64)
            if not len(y) or np.isnan(y).all():
                continue
            marker = "o" if len(y) < 30 else None
            ax.plot(x, y, style, color=color(i), marker=marker, ms=3, label=f"{r.name} {tag}")
            drawn = True
    if not drawn:
        return None
    _finish(ax, "epoch", metric)
    _fit(fig)
    return fig


def step_loss(runs: list[Run]):
    """The loss of every step (light) and its moving average, runs overlaid."""
    fig = _figure()
    ax = fig.add_subplot()
    drawn = False
    for i, r in enumerate(runs):
        y = np.asarray(r.steps.get("loss", []), dtype=np.float64)
        if not len(y) or np.isnan(y).all():
            continue
        x = np.asarray(r.step, dtype=np.float64)
        xs, ys = _thin(x, y)
        ax.plot(xs, ys, color=color(i), alpha=0.25, lw=0.8)
        k = max(1, len(y) // 50)
        good = np.where(np.isnan(y), np.nanmean(y), y)
        smooth = np.convolve(good, np.ones(k) / k, mode="valid")
        xs, ys = _thin(x[k - 1 :], smooth)
        ax.plot(xs, ys, color=color(i), lw=1.6, label=f"{r.name} (mean of {k})")
        drawn = True
    if not drawn:
        return None
    positive = all(np.nanmin(np.asarray(r.steps.get("loss", [1.0]))) > 0 for r in runs)
    _finish(ax, "step", "loss", log=positive)
    _fit(fig)
    return fig


def lr_curves(runs: list[Run]):
    """The learning rate per step (or per epoch when steps were not recorded)."""
    fig = _figure(5.2, 2.8)
    ax = fig.add_subplot()
    drawn, unit = False, "step"
    for i, r in enumerate(runs):
        lr = np.asarray(r.steps.get("lr", []), dtype=np.float64)
        x = np.asarray(r.step, dtype=np.float64)
        if not len(lr) or np.isnan(lr).all():
            lr = np.asarray(r.timing.get("lr", []), dtype=np.float64)
            x = np.asarray(r.timing.get("epoch", []), dtype=np.float64) + 1
            unit = "epoch"
        if not len(lr) or np.isnan(lr).all():
            continue
        xs, ys = _thin(x, lr)
        ax.plot(xs, ys, color=color(i), label=r.name)
        drawn = True
    if not drawn:
        return None
    _finish(ax, unit, "learning rate")
    _fit(fig)
    return fig


def timing(runs: list[Run]):
    """Seconds per epoch and samples per second, side by side."""
    fig = _figure(8.6, 3.0)
    a, b = fig.subplots(1, 2)
    drawn = False
    for i, r in enumerate(runs):
        t = r.timing
        if not t.get("epoch"):
            continue
        x = np.asarray(t["epoch"], dtype=np.float64) + 1
        marker = "o" if len(x) < 30 else None
        a.plot(x, t.get("seconds", [math.nan] * len(x)), color=color(i), marker=marker, ms=3)
        sps = np.asarray(t.get("samples_per_s", []), dtype=np.float64)
        if len(sps) and not np.isnan(sps).all():
            b.plot(x, sps, color=color(i), marker=marker, ms=3, label=r.name)
        drawn = True
    if not drawn:
        return None
    _finish(a, "epoch", "wall time per epoch (s)")
    _finish(b, "epoch", "samples / s")
    a.set_ylim(bottom=0)
    b.set_ylim(bottom=0)
    _fit(fig)
    return fig


def confusion_matrix(target: np.ndarray, pred: np.ndarray, n: int | None = None) -> np.ndarray:
    """``m[i, j]``: how many samples of class ``i`` were predicted ``j``.

    Example:
        >>> import numpy as np
        >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0])).tolist()
        [[1, 0], [1, 1]]
    """
    keep = (target >= 0) & (pred >= 0)  # negative targets: ignored positions (-100)
    target, pred = target[keep], pred[keep]
    n = n or int(max(target.max(initial=0), pred.max(initial=0))) + 1
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (target, pred), 1)
    return m


def confusion(run: Run):
    """The validation confusion matrix of a classifier run (rows: true class)."""
    if run.target is None or run.pred is None or not len(run.target):
        return None
    m = confusion_matrix(run.target, run.pred)
    n = len(m)
    size = min(4.4, 2.0 + 0.24 * n)  # two matrices fit side by side on the page
    fig = _figure(size + 0.8, size, layout="constrained")
    ax = fig.add_subplot()
    rows = np.maximum(m.sum(1, keepdims=True), 1)
    im = ax.imshow(m / rows, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if m[i, j]:
                    light = m[i, j] / rows[i, 0] > 0.6
                    ax.text(
                        j,
                        i,
                        str(m[i, j]),
                        ha="center",
                        va="center",
                        fontsize=7 if n > 10 else 9,
                        color="white" if light else "black",
                    )
    names = run.class_names if run.class_names and len(run.class_names) == n else None
    if n <= 30:
        ax.set_xticks(range(n), names or range(n), rotation=90 if names else 0)
        ax.set_yticks(range(n), names or range(n))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{run.name}: validation, {len(run.target)} samples", fontsize="medium")
    fig.colorbar(im, ax=ax, shrink=0.8, label="fraction of the true class")
    return fig


def figure_svg(fig) -> str:
    """The figure as an ``<svg>`` element (text kept as text) for inlining in HTML."""
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        FigureCanvasSVG(fig).print_svg(buf)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def figure_png(fig, path: str, dpi: int = 150) -> str:
    """Write the figure as a PNG file."""
    fig.savefig(path, format="png", dpi=dpi)
    return path
