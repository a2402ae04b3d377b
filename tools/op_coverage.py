"""Write ``docs/op_coverage.md``: PyTorch's public operator names against Ember's.

For each namespace (``torch``, ``torch.nn.functional``, ``torch.linalg``, ``torch.special``,
``torch.fft``) every public function is classified as

* **present** — Ember has the same name in the matching namespace; **tested** when an op
  record compares it with PyTorch (``tests/test_ops.py``) or a test file calls it;
* **deliberately absent** — a rule below names why (backend-specific kernels, sparse and
  quantized tensor types, TorchScript/compiler internals, autocast, functionalization
  ``*_copy`` variants, top-level in-place ``op_`` duplicates of Tensor methods ...);
* **missing** — everything else: the work list.

Run ``python tools/op_coverage.py`` (needs PyTorch); ``--check`` exits 1 when the file is
stale. The percentage is present / (present + missing): deliberately absent names do not
count either way.
"""

from __future__ import annotations

import argparse
import inspect
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "op_coverage.md"

NAMESPACES = [
    ("torch", "torch", "ember"),
    ("torch.nn.functional", "torch.nn.functional", "ember.nn.functional"),
    ("torch.linalg", "torch.linalg", "ember.linalg"),
    ("torch.special", "torch.special", "ember.special"),
    ("torch.masked", "torch.masked", "ember.masked"),
    ("torch.fft", "torch.fft", "ember.fft"),
    ("torch.signal.windows", "torch.signal.windows", "ember.signal.windows"),
]

# (regex on the name, reason) — first match wins
ABSENT_RULES: list[tuple[str, str]] = [
    (r"^(cudnn|miopen|mkldnn|fbgemm|native|_)", "backend-specific or private kernel entry"),
    (
        r"(^|_)(sparse|spmm|smm|hsmm|dsmm|saddmm|sspaddmm|hspmm)|(crow|ccol|row|col)_indices|"
        r"^values_copy$|^indices_copy$",
        "no sparse tensors",
    ),
    (
        r"^(q_|quantize|quantized|dequantize|int_repr|fake_quantize|choose_qparams|"
        r"fused_moving_avg_obs|empty_quantized)",
        "quantized tensor type: see ember.quantization",
    ),
    (r"autocast", "no autocast (CPU float32/float64 only)"),
    (
        r"^(sym_|parse_ir|parse_schema|parse_type_comment|import_ir_module|merge_type_from_type"
        r"|unify_type_list|fork|wait|compiled_with_cxx11_abi|classproperty|typename|vmap|cond|"
        r"while_loop|get_file_path|prepare_multiprocessing_environment|profiler_|"
        r"thread_safe_generator|hash_tensor|slice_inverse)",
        "TorchScript, torch.compile or torch internals",
    ),
    (r"_copy$", "functionalization copy variant of a view op (the view op exists)"),
    (
        r"^(is_vulkan_available|get_device_module|set_default_device|get_default_device|"
        r"init_num_threads|set_num_interop_threads|get_num_interop_threads|set_flush_denormal|"
        r"set_float32_matmul_precision|get_float32_matmul_precision|set_warn_always|"
        r"is_warn_always_enabled|use_deterministic_algorithms|are_deterministic_algorithms_enabled"
        r"|is_deterministic_algorithms_warn_only_enabled|set_deterministic_debug_mode|"
        r"get_deterministic_debug_mode|is_inference_mode_enabled|is_anomaly_check_nan_enabled|"
        r"set_default_tensor_type|is_storage|from_file|to_dlpack|get_device|dsplit_copy)$",
        "device, threading or global-mode switch with no CPU/NumPy counterpart",
    ),
    (
        r"^(batch_norm_|lstm_cell|gru_cell|rnn_tanh|rnn_relu|lstm|gru|conv_tbc|"
        r"grid_sampler_[23]d|cudnn_grid|affine_grid_generator|embedding_renorm_|"
        r"batch_norm_backward|segment_reduce|constant_pad_nd|convolution|"
        r"max_pool1d_with_indices|norm_except_dim|frobenius_norm|nuclear_norm|symeig|lu|"
        r"lobpcg|pca_lowrank|svd_lowrank|geqrf|orgqr|ormqr|empty_permuted|empty_strided|"
        r"as_strided.*|resize_as_|resize_as_sparse_|alias_copy|unsafe_.*|"
        r"is_same_size|is_neg|is_conj|resolve_neg|resolve_conj|conj_physical.*|"
        r"nonzero_static|binomial|poisson|rsub|range|scalar_tensor|set_printoptions|"
        r"instance_norm|group_norm|layer_norm|rms_norm|dropout|feature_dropout|"
        r"alpha_dropout|feature_alpha_dropout|embedding|embedding_bag|threshold|"
        r"frombuffer|asarray|trapz)$",
        "ATen-level entry: the public op lives elsewhere (torch.nn.functional, torch.linalg, a "
        "Tensor method) or is deprecated",
    ),
]

# torch.nn.functional names that are not operators, or need a GPU
F_ABSENT_RULES: list[tuple[str, str]] = [
    (
        r"^(Optional|assert_int_or_pair|boolean_dispatch|handle_torch_function|has_torch_function.*)$",
        "a helper of PyTorch's own implementation, not an operator",
    ),
    (r"^(scaled_mm|scaled_grouped_mm|grouped_mm)$", "CUDA-only low-precision/grouped GEMM"),
    (r"^conv_tbc$", "legacy ATen entry (time-batch-channel convolution)"),
]

# top-level ATen entries whose PyTorch signature differs from the functional one (integer
# reduction enums, reordered arguments) or that are internals of a module
ATEN_ENTRIES = (
    "binary_cross_entropy_with_logits|cosine_embedding_loss|hinge_embedding_loss|kl_div|"
    "margin_ranking_loss|poisson_nll_loss|triplet_margin_loss|ctc_loss|batch_norm|"
    "rnn_relu_cell|rnn_tanh_cell|grid_sampler|adaptive_max_pool1d|is_distributed"
)

EXTRA_ABSENT = {
    ("torch", "eig"): "removed from PyTorch 2 (torch.linalg.eig)",
    ("torch", "lstsq"): "removed from PyTorch 2 (torch.linalg.lstsq)",
    ("torch", "solve"): "removed from PyTorch 2 (torch.linalg.solve)",
    ("torch", "matrix_rank"): "removed from PyTorch 2 (torch.linalg.matrix_rank)",
}


def _public_functions(mod) -> list[str]:
    out = []
    for name in dir(mod):
        if name.startswith("_"):
            continue
        obj = getattr(mod, name, None)
        if obj is None or inspect.isclass(obj) or inspect.ismodule(obj):
            continue
        if callable(obj):
            out.append(name)
    return sorted(out)


def _absent_reason(ns: str, name: str) -> str | None:
    if (ns, name) in EXTRA_ABSENT:
        return EXTRA_ABSENT[(ns, name)]
    if ns == "torch" and name.endswith("_") and not name.endswith("__"):
        return "top-level in-place duplicate of a Tensor method (x.op_() exists)"
    if ns == "torch.nn.functional":
        for pattern, reason in F_ABSENT_RULES:
            if re.search(pattern, name):
                return reason
        return None
    if ns != "torch":
        return None
    if re.fullmatch(ATEN_ENTRIES, name):
        return (
            "ATen-level entry with another signature than its torch.nn.functional namesake "
            "(integer reduction enum, reordered arguments, tuple result) or a module internal: "
            "use ember.nn.functional / ember.nn"
        )
    if name.startswith("batch_norm_"):
        return "SyncBatchNorm internals (ember.nn.SyncBatchNorm)"
    for pattern, reason in ABSENT_RULES:
        if re.search(pattern, name):
            return reason
    return None


def _tested_names() -> set[str]:
    sys.path.insert(0, str(ROOT))
    from ember.ops._records import OPS

    tested = {r.name for r in OPS.values() if r.ref is not None}
    text = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    tested |= set(re.findall(r"\b(?:ember|F|linalg|special|fft|nnf|windows|masked)\.(\w+)\(", text))
    return tested


def collect() -> list[tuple[str, str, str, str]]:
    """``(namespace, name, status, reason)`` rows."""
    import importlib

    import torch  # noqa: F401  (the namespaces below are attributes of it)

    sys.path.insert(0, str(ROOT))
    tested = _tested_names()
    rows = []
    for label, tmod, emod in NAMESPACES:
        tm = importlib.import_module(tmod)
        try:
            em = importlib.import_module(emod)
        except ImportError:
            em = None
        for name in _public_functions(tm):
            if em is not None and hasattr(em, name):
                rows.append((label, name, "tested" if name in tested else "present", ""))
                continue
            reason = _absent_reason(label, name)
            if reason:
                rows.append((label, name, "absent", reason))
            else:
                rows.append((label, name, "missing", ""))
    return rows


def render(rows) -> str:
    lines = [
        "# PyTorch operator coverage",
        "",
        "Generated by `python tools/op_coverage.py` (do not edit): PyTorch's public functions",
        "per namespace against Ember's. *Present* counts names Ember has (tested ones are",
        "compared with PyTorch by an op record or named in a test); *deliberately absent* names",
        "are listed with the reason and do not count; *missing* is the work list.",
        "",
        "| namespace | present (tested) | missing | coverage | deliberately absent |",
        "|---|---|---|---|---|",
    ]
    total_p = total_m = 0
    for label, *_ in NAMESPACES:
        sel = [r for r in rows if r[0] == label]
        p = sum(r[2] in ("present", "tested") for r in sel)
        t = sum(r[2] == "tested" for r in sel)
        m = sum(r[2] == "missing" for r in sel)
        a = sum(r[2] == "absent" for r in sel)
        total_p += p
        total_m += m
        cov = f"{100 * p / (p + m):.0f}%" if p + m else "-"
        lines.append(f"| `{label}` | {p} ({t}) | {m} | {cov} | {a} |")
    cov = 100 * total_p / max(total_p + total_m, 1)
    lines += ["", f"**Overall: {total_p} of {total_p + total_m} names present ({cov:.1f}%).**", ""]
    for label, *_ in NAMESPACES:
        sel = [r for r in rows if r[0] == label]
        missing = [r[1] for r in sel if r[2] == "missing"]
        lines += [f"## `{label}`", ""]
        lines.append(
            "Missing: " + (", ".join(f"`{n}`" for n in missing) if missing else "none") + "."
        )
        lines.append("")
        untested = [r[1] for r in sel if r[2] == "present"]
        if untested:
            lines.append(
                "Present but not named in a test: " + ", ".join(f"`{n}`" for n in untested) + "."
            )
            lines.append("")
        absent = [r for r in sel if r[2] == "absent"]
        if absent:
            by_reason: dict[str, list[str]] = {}
            for r in absent:
                by_reason.setdefault(r[3], []).append(r[1])
            lines.append("Deliberately absent:")
            lines.append("")
            for reason, names in sorted(by_reason.items()):
                lines.append(f"- {reason}: " + ", ".join(f"`{n}`" for n in names))
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    args = ap.parse_args(argv)
    text = render(collect())
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run python tools/op_coverage.py")
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
