"""``ember export TARGET --format onnx|saved|lite``: a trained model for deployment.

``TARGET`` is a run config (its run's final model, as ``ember eval`` finds it) or a model
file written by ``ember train``. Formats:

- ``saved``: an ember saved model (:mod:`ember.export`), with the run's input
  preprocessing in its manifest;
- ``lite``: the same directory, checked to run in ``ember_lite`` (NumPy only) with the same
  outputs as ember when ``ember_lite`` is installed;
- ``onnx``: an ONNX file (:func:`ember.onnx.export`, the ``[onnx]`` extra), batch axis
  dynamic.

``--int8`` quantizes first (:mod:`ember.quantization`): static post-training int8
calibrated on ``--calibrate N`` training samples (dynamic int8 for recurrent models). The
quantized model traces like a float one (its int8 layers are primitives), so every format
takes it: a QDQ ONNX file for onnxruntime, or a saved model whose graph holds the int8
weights, which ember and ember_lite run with the same integers. The output defaults to the
model file's folder (``model.onnx``, ``model_saved/``, ``model_lite/``; ``_int8`` marks
quantized ones); an existing output is replaced only with ``--force``.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import numpy as np

__all__ = ["add_parser", "cmd_export", "export"]

FORMATS = ("onnx", "saved", "lite")
INPUT_NAME = "x"


def add_parser(sub: Any) -> None:
    """Add the ``export`` subcommand to the ``ember`` command's subparsers."""
    p = sub.add_parser("export", help="export a trained model (ONNX, saved model, lite)")
    p.add_argument("target", help="a config file (its run's final model) or a model file")
    p.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    p.add_argument("-o", "--output", help="output file (onnx) or directory (saved, lite)")
    p.add_argument("--int8", action="store_true", help="quantize to int8 first")
    p.add_argument(
        "--calibrate",
        type=int,
        default=None,
        metavar="N",
        help="training samples for int8 calibration (static quantization; default 256)",
    )
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (onnx format; default 17)")
    p.add_argument("--force", action="store_true", help="replace an existing output")


def cmd_export(a: Any) -> None:
    res = export(
        a.target,
        a.format,
        a.output,
        int8=a.int8,
        calibrate=a.calibrate,
        opset=a.opset,
        force=a.force,
    )
    print(f"wrote {res['path']}  ({res['summary']})")


def export(
    target: str,
    fmt: str,
    output: str | None = None,
    *,
    int8: bool = False,
    calibrate: int | None = None,
    opset: int | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Export the model of a run config or model file; returns ``{"path", "summary"}``.

    Example:
        >>> export("missing.yaml", "saved")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        ConfigError: missing.yaml: file not found
    """
    from .config import ConfigError
    from .run import final_model, load_model

    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if calibrate is not None and not int8:
        raise ConfigError("--calibrate applies to --int8 exports only")
    if opset is not None and fmt != "onnx":
        raise ConfigError("--opset applies to --format onnx only")
    calibrate = 256 if calibrate is None else calibrate
    if calibrate < 1:
        raise ConfigError(f"--calibrate must be >= 1, got {calibrate}")
    if int8 and importlib.util.find_spec("ember.quantization") is None:
        raise ConfigError("int8 export needs ember.quantization (not available)")
    if target.endswith((".yaml", ".yml")):
        if not os.path.exists(target):
            raise ConfigError("file not found", target)
        model_path = final_model(target)
    else:
        model_path = target
    model, cfg, spec = load_model(model_path)
    out = output or _default_output(model_path, fmt, int8)
    if os.path.lexists(out) and not force:
        raise FileExistsError(f"{out} exists (use --force to replace it)")
    x = _example_input(spec)
    note = ""
    if int8:
        model, note = _quantize(model, cfg, model_path, calibrate)
    if fmt == "onnx":
        summary = _to_onnx(model, x, out, 17 if opset is None else opset, int8)
    else:
        summary = _to_saved(model, x, out, cfg, spec, lite=fmt == "lite")
    return {"path": out, "summary": summary + note}


def _default_output(model_path: str, fmt: str, int8: bool) -> str:
    stem = os.path.splitext(os.path.basename(model_path))[0] + ("_int8" if int8 else "")
    name = {"onnx": f"{stem}.onnx", "saved": f"{stem}_saved", "lite": f"{stem}_lite"}[fmt]
    return os.path.join(os.path.dirname(os.path.abspath(model_path)), name)


def _example_input(spec: dict[str, Any]) -> Any:
    """Two deterministic samples of the model's input form (no training data needed)."""
    import ember

    shape = (2, *spec["shape"])
    rng = np.random.default_rng(0)
    if np.issubdtype(np.dtype(spec["dtype"]), np.integer):
        n = spec.get("num_classes") or 2
        x = rng.integers(0, n, size=shape).astype(spec["dtype"])
    else:
        x = rng.standard_normal(shape).astype(spec["dtype"])
    return ember.from_numpy(x)


def _quantize(model: Any, cfg: dict, path: str, n: int) -> tuple[Any, str]:
    from ember import nn, quantization

    from . import datasets

    if any(isinstance(m, (nn.LSTM, nn.GRU, nn.RNN)) for m in model.modules()):
        return quantization.quantize_dynamic(model), ", int8 dynamic"
    _, _, _, full = datasets.build_datasets(cfg, path)
    g = np.random.default_rng(cfg["solver"]["seed"])
    idx = g.permutation(len(full))[: min(n, len(full))]
    xs = np.stack([datasets.sample_of(_Item(full, int(i))) for i in idx])
    return quantization.quantize_static(model, xs), f", int8 static, {len(idx)} calibration samples"


class _Item:
    """One sample of a dataset as a one-sample dataset (for ``datasets.sample_of``)."""

    def __init__(self, ds: Any, i: int):
        self.ds, self.i = ds, i

    def __getitem__(self, _: int) -> Any:
        return self.ds[self.i]


def _to_onnx(model: Any, x: Any, out: str, opset: int, int8: bool) -> str:
    import ember.onnx

    tmp = f"{out}.tmp-{os.getpid()}"
    try:
        ember.onnx.export(
            model,
            (x,),
            tmp,
            opset=opset,
            dynamic_axes={INPUT_NAME: {0: "batch"}},
            input_names=[INPUT_NAME],
        )
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return f"ONNX opset {opset}{', QDQ int8' if int8 else ''}, dynamic batch"


def _to_saved(model: Any, x: Any, out: str, cfg: dict, spec: dict, lite: bool) -> str:
    import ember.export
    from ember.export import _format as F
    from ember.export._preprocess import from_run

    pre = from_run(cfg, spec, INPUT_NAME)
    if os.path.lexists(out):
        F.check_target(out, overwrite=True)  # only a saved model or an empty folder
    tmp = F.new_temp_dir(out)
    try:
        ember.export.save(
            model, tmp, (x,), input_names=[INPUT_NAME], preprocessing=pre, overwrite=True
        )
        summary = "saved model, dynamic batch"
        if lite:
            summary = _check_lite(tmp, model, x)
        F.commit_dir(tmp, out)
    except BaseException:
        F.remove_dir(tmp)
        raise
    return summary


def _check_lite(path: str, model: Any, x: Any) -> str:
    """Load the directory in ember_lite and compare its outputs with ember's."""
    if importlib.util.find_spec("ember_lite") is None:
        return "saved model for ember_lite (ember_lite is not installed here: not run)"
    import ember_lite

    import ember

    try:
        lm = ember_lite.load(path)
    except ember_lite.UnsupportedPrimitiveError as exc:
        raise ValueError(f"the model cannot run in ember_lite: {exc}") from None
    got = lm.signatures["serving_default"].run({INPUT_NAME: x.numpy()})
    model.eval()
    with ember.no_grad():
        ref = model(x)
    refs = ref if isinstance(ref, (tuple, list)) else (ref,)
    flat: list[Any] = []
    for r in refs:  # one level of nesting: (output, (h, c)) of recurrent models
        flat.extend(r if isinstance(r, (tuple, list)) else (r,))
    for (name, g), r in zip(got.items(), flat):
        if not np.allclose(g, r.numpy(), rtol=1e-4, atol=1e-5):
            err = float(np.max(np.abs(g - r.numpy())))
            raise ValueError(
                f"ember_lite's output {name!r} differs from ember's (max abs error {err:.3g})"
            )
    return "saved model, checked in ember_lite"
