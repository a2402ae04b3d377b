"""The report page: one self-contained HTML file (figures inlined as SVG, no script, no
network), and the same figures as PNG files."""

from __future__ import annotations

import datetime
import html
import math
import os

import numpy as np

from . import plots
from .recorder import atomic_write
from .runs import Run

__all__ = ["class_report", "config_rows", "render_html", "report_figures", "write_pngs"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;
background:#fafafa}
main{max-width:1100px;margin:auto;padding:16px 24px}
h1{font-size:22px;margin:8px 0}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #ddd}
section.figs{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:6px}
figure svg{max-width:100%;height:auto;display:block}
figcaption{font-weight:600;font-size:13px;padding:2px 4px}
table{border-collapse:collapse;background:#fff;font-size:13px;margin:4px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f0f0f0}td.k,th.k{text-align:left;font-family:ui-monospace,monospace}
tr.diff td{background:#fff4d6}
.problems{background:#fff0f0;border:1px solid #e4b4b4;border-radius:6px;padding:6px 14px}
.muted{color:#777}.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;
margin-right:5px}
"""


def _e(x) -> str:
    return html.escape(str(x))


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "&ndash;"
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    return _e(v)


def report_figures(runs: list[Run]) -> list[tuple[str, str, object]]:
    """``(id, caption, Figure)`` of every figure the runs have data for."""
    out = []
    for m in plots.metric_names(runs):
        fig = plots.epoch_curves(runs, m)
        if fig is not None:
            out.append((f"epoch-{m}", f"{m} per epoch", fig))
    for fid, cap, fn in (
        ("step-loss", "loss per step", plots.step_loss),
        ("lr", "learning rate", plots.lr_curves),
        ("timing", "wall time and throughput", plots.timing),
    ):
        fig = fn(runs)
        if fig is not None:
            out.append((fid, cap, fig))
    for i, r in enumerate(runs):
        fig = plots.confusion(r)
        if fig is not None:
            out.append((f"confusion-{i}", f"confusion matrix: {r.name}", fig))
    return out


def _flat(d, prefix="") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def config_rows(runs: list[Run]) -> list[tuple[str, list[str], bool]]:
    """``(key, value per run, differs)`` over the flattened configs, differing keys first."""
    flats = [_flat(r.config) for r in runs]
    keys = sorted({k for f in flats for k in f})
    rows = []
    for k in keys:
        vals = [repr(f[k]) if k in f else "(absent)" for f in flats]
        rows.append((k, vals, len(set(vals)) > 1))
    return sorted(rows, key=lambda r: not r[2])


def class_report(target: np.ndarray, pred: np.ndarray) -> list[tuple[int, float, float, int]]:
    """``(class, precision, recall, support)`` per class (nan where undefined).

    Example:
        >>> import numpy as np
        >>> class_report(np.array([0, 1, 1]), np.array([0, 1, 0]))
        [(0, 0.5, 1.0, 1), (1, 1.0, 0.5, 2)]
    """
    m = plots.confusion_matrix(target, pred)
    tp = np.diag(m).astype(np.float64)
    predicted, support = m.sum(0), m.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = tp / predicted
        rec = tp / support
    return [
        (i, float(prec[i]), float(rec[i]), int(support[i]))
        for i in range(len(m))
        if support[i] or predicted[i]
    ]


def _problems(runs: list[Run]) -> list[str]:
    msgs = [f"{r.name}: {p}" for r in runs for p in r.problems]
    if len(runs) > 1:
        names = plots.metric_names(runs)
        for r in runs:
            if r.empty:
                continue
            have = {k[4:] if k.startswith("val_") else k for k in r.epochs}
            missing = [m for m in names if m not in have]
            if missing:
                msgs.append(f"{r.name}: has no {', '.join(missing)} (other runs do)")
    return msgs


def _summary_table(runs: list[Run]) -> str:
    keys: list[str] = []
    for r in runs:
        for k in r.epochs:
            if k not in keys:
                keys.append(k)
    res_keys = sorted({k for r in runs for k in r.results if k not in keys})
    head = (
        "<tr><th class=k>run</th><th>epochs</th><th>time (s)</th>"
        + "".join(f"<th>{_e(k)}</th>" for k in keys)
        + "".join(f"<th>{_e(k)}</th>" for k in res_keys)
        + "</tr>"
    )
    body = []
    for i, r in enumerate(runs):
        secs = np.asarray(r.timing.get("seconds", []), dtype=np.float64)
        total = float(np.nansum(secs)) if len(secs) else math.nan
        cells = [
            f"<td class=k><span class=swatch style='background:{plots.color(i)}'></span>"
            f"{_e(r.name)}</td>",
            f"<td>{len(r.epoch) or len(r.timing.get('epoch', []))}</td>",
            f"<td>{_fmt(total)}</td>",
        ]
        for k in keys:
            v = r.epochs.get(k)
            cells.append(f"<td>{_fmt(v[-1]) if v else '&ndash;'}</td>")
        for k in res_keys:
            cells.append(f"<td>{_fmt(float(r.results[k])) if k in r.results else '&ndash;'}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table id=final-metrics>{head}{''.join(body)}</table>"


def _config_html(runs: list[Run]) -> str:
    rows = config_rows(runs)
    if not rows:
        return "<p class=muted>no config.json in these runs</p>"
    head = "<tr><th class=k>key</th>" + "".join(f"<th>{_e(r.name)}</th>" for r in runs) + "</tr>"

    def tr(k, vals, diff):
        cls = " class=diff" if diff and len(runs) > 1 else ""
        cells = "".join(f"<td class=k>{_e(v)}</td>" for v in vals)
        return f"<tr{cls}><td class=k>{_e(k)}</td>{cells}</tr>"

    diff = [tr(*r) for r in rows if r[2]]
    same = [tr(*r) for r in rows if not r[2]]
    out = []
    if len(runs) > 1:
        out.append(
            f"<p>{len(diff)} setting{'s' * (len(diff) != 1)} differ between the runs"
            f"{' (highlighted)' if diff else ''}.</p>"
        )
        if diff:
            out.append(f"<table id=config-diff>{head}{''.join(diff)}</table>")
        if same:
            out.append(
                f"<details><summary>{len(same)} shared settings</summary>"
                f"<table>{head}{''.join(same)}</table></details>"
            )
    else:
        out.append(
            f"<details open><summary>config</summary><table>{head}{''.join(same)}</table></details>"
        )
    return "".join(out)


def _classes_html(runs: list[Run]) -> str:
    parts = []
    for r in runs:
        if r.target is None or r.pred is None or not len(r.target):
            continue
        rep = class_report(r.target, r.pred)
        names = r.class_names
        acc = float(np.mean(r.target == r.pred))
        rows = "".join(
            f"<tr><td class=k>{_e(names[c] if names and c < len(names) else c)}</td>"
            f"<td>{_fmt(p)}</td><td>{_fmt(rc)}</td><td>{s}</td></tr>"
            for c, p, rc, s in rep
        )
        parts.append(
            f"<div><b>{_e(r.name)}</b> <span class=muted>accuracy {acc:.4f} on "
            f"{len(r.target)} validation samples</span><table class=per-class>"
            "<tr><th class=k>class</th><th>precision</th><th>recall</th><th>support</th></tr>"
            f"{rows}</table></div>"
        )
    return "<section class=figs>" + "".join(parts) + "</section>" if parts else ""


def render_html(runs: list[Run], title: str | None = None) -> str:
    """The whole report page as a string.

    Example:
        >>> from ember.report import Run, render_html
        >>> page = render_html([Run("a", epoch=[0, 1], epochs={"loss": [1.0, 0.5]})])
        >>> page.startswith("<!DOCTYPE html>") and "loss per epoch" in page
        True
    """
    title = title or "Ember run report: " + ", ".join(r.name for r in runs)
    figs = report_figures(runs)

    def fig_html(fid, cap, fig):
        return (
            f"<figure class=plot id='fig-{_e(fid)}'><figcaption>{_e(cap)}</figcaption>"
            f"{plots.figure_svg(fig)}</figure>"
        )

    curves = [f for f in figs if not f[0].startswith("confusion")]
    conf = [f for f in figs if f[0].startswith("confusion")]
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    out = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1><p class=muted>written {_e(now)} from "
        + ", ".join(_e(r.path or r.name) for r in runs)
        + "</p>",
    ]
    problems = _problems(runs)
    if problems:
        out.append(
            "<div class=problems id=problems><b>Missing or unreadable:</b><ul>"
            + "".join(f"<li>{_e(p)}</li>" for p in problems)
            + "</ul></div>"
        )
    out.append("<h2>Final metrics</h2>" + _summary_table(runs))
    out.append("<h2>Curves</h2>")
    if curves:
        out.append("<section class=figs>" + "".join(fig_html(*f) for f in curves) + "</section>")
    else:
        out.append("<p class=muted>no curves: these runs have no logged values</p>")
    if conf:
        out.append("<h2>Validation predictions</h2>")
        out.append("<section class=figs>" + "".join(fig_html(*f) for f in conf) + "</section>")
        out.append(_classes_html(runs))
    out.append("<h2>Config</h2>" + _config_html(runs))
    out.append("</main></body></html>\n")
    return "".join(out)


def write_report(runs: list[Run], path: str, title: str | None = None) -> str:
    """Write the report page atomically (a browser reloading it never sees half a file)."""
    atomic_write(os.fspath(path), render_html(runs, title))
    return os.fspath(path)


def write_pngs(runs: list[Run], directory: str, dpi: int = 150) -> list[str]:
    """Every report figure as ``DIRECTORY/<id>.png``; returns the paths."""
    os.makedirs(directory, exist_ok=True)
    return [
        plots.figure_png(fig, os.path.join(directory, f"{fid}.png"), dpi)
        for fid, _, fig in report_figures(runs)
    ]
