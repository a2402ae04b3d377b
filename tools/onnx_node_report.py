"""Run the ONNX node conformance cases through Ember's ONNX backend and write the report.

Writes ``docs/onnx_conformance.md`` (per operator: pass / fail / unsupported counts, the
failing cases with their errors, the ONNX operators Ember does not implement) and the
summary between the ``onnx-conformance`` markers in ``README.md``.

    PYTHONPATH=$PWD python tools/onnx_node_report.py [--check]

``--check`` writes nothing and exits non-zero when the pass rate fell below the one the
report records.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "onnx_conformance.md"
README = ROOT / "README.md"
START, END = "<!-- onnx-conformance:start -->", "<!-- onnx-conformance:end -->"
RATE_RE = re.compile(r"pass rate: \*\*(\d+) / (\d+)\*\*")


def recorded_rate(text: str) -> tuple[int, int] | None:
    """The (passed, implemented) pair a report records, if any."""
    m = RATE_RE.search(text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def unimplemented_ops() -> tuple[list[str], list[str]]:
    """Operators of the default ONNX domain (newest opset) without an Ember mapping: those
    with no function body, and those that run through their ONNX function body."""
    import onnx

    from ember.onnx._import import IMPORTS

    schemas = {s.name: s for s in onnx.defs.get_all_schemas() if s.domain in ("", "ai.onnx")}
    rest = sorted(set(schemas) - set(IMPORTS))
    body = [n for n in rest if schemas[n].has_function or schemas[n].has_context_dependent_function]
    return [n for n in rest if n not in body], body


def run() -> tuple[dict, dict, float]:
    from ember.onnx.conformance import node_cases, run_case, summarize

    t = time.perf_counter()
    cases = node_cases()
    results = {c.name: run_case(c) for c in cases}
    return summarize(results, cases), results, time.perf_counter() - t


def render(table: dict, results: dict, seconds: float) -> tuple[str, str]:
    import onnx

    counts = {k: sum(r.status == k for r in results.values()) for k in
              ("pass", "fail", "unsupported", "dtype")}  # fmt: skip
    done = counts["pass"] + counts["fail"]
    pct = 100 * counts["pass"] / max(done, 1)
    missing, by_body = unimplemented_ops()
    # operators none of whose cases can run (no mapping, or a body needing one)
    tested_missing = sorted(
        op for op, r in table.items() if r["unsupported"] and not (r["pass"] or r["fail"])
    )
    lines = [
        "# ONNX node conformance",
        "",
        f"The {len(results)} node test cases of `onnx` {onnx.__version__} "
        "(`onnx.backend.test.case.node`, the generators its `backend/test/data/node` files are "
        "written from) run through `ember.onnx.backend.EmberBackend`. "
        "Regenerate with `PYTHONPATH=$PWD python tools/onnx_node_report.py` "
        f"({seconds:.0f} s on the development VM).",
        "",
        "A case is *unsupported (op)* when its graph uses an operator Ember has no import for, "
        "*unsupported (dtype)* when it uses an element type Ember has no dtype for (float8, "
        "bfloat16 and int4/uint4 casts, uint16-64, strings), else it passes or fails by the "
        "ONNX runner's rule: same dtype and shape, values within the case's rtol/atol. "
        "An `_expanded` case (the operator's function body) counts for its operator.",
        "",
        f"- pass rate: **{counts['pass']} / {done}** ({pct:.1f}%) of the cases Ember implements",
        f"- unsupported: {counts['unsupported']} cases (operator), "
        f"{counts['dtype']} cases (element type)",
        "",
        "| operator | cases | pass | fail | unsupported (op) | unsupported (dtype) |",
        "|---|---|---|---|---|---|",
    ]
    for op in sorted(table):
        r = table[op]
        n = r["pass"] + r["fail"] + r["unsupported"] + r["dtype"]
        lines.append(
            f"| {op} | {n} | {r['pass']} | {r['fail']} | {r['unsupported']} | {r['dtype']} |"
        )
    lines += ["", "## Failing cases", ""]
    fails = [(op, name, why) for op, r in sorted(table.items()) for name, why in r["failing"]]
    lines += [f"- `{name}` ({op}): {why}" for op, name, why in fails] or ["none"]
    lines += [
        "",
        "## Operators Ember does not import",
        "",
        f"{len(missing)} operators of the default domain (opset "
        f"{onnx.defs.onnx_opset_version()}) have no Ember mapping and no function body: "
        + ", ".join(missing)
        + ".",
        "",
        f"{len(by_body)} more run through the function body ONNX defines for them: "
        + ", ".join(by_body)
        + "; those whose body needs an operator above (`Loop`, `Scan`, "
        "random or sequence operators) stay unsupported.",
        "",
        "Operators none of whose node cases can run: " + ", ".join(tested_missing) + ".",
        "",
    ]
    summary = [
        START,
        f"ONNX node conformance (`onnx` {onnx.__version__}'s {len(results)} node test cases "
        "through `ember.onnx.backend.EmberBackend`; per operator in "
        "[`docs/onnx_conformance.md`](docs/onnx_conformance.md)): "
        f"pass rate: **{counts['pass']} / {done}** ({pct:.1f}%) of the cases whose operators "
        f"and element types Ember implements; {counts['unsupported']} cases use an operator "
        f"Ember does not import and {counts['dtype']} an element type it lacks. "
        f"Operators none of whose node tests can run: {', '.join(tested_missing)}.",
        END,
    ]
    return "\n".join(lines), "\n".join(summary)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the report; write nothing")
    args = ap.parse_args(argv)
    table, results, seconds = run()
    doc, summary = render(table, results, seconds)
    got = recorded_rate(doc)
    if args.check:
        want = recorded_rate(DOC.read_text()) if DOC.exists() else None
        print(f"now {got}, recorded {want}")
        return 0 if want is None or got[0] * want[1] >= want[0] * got[1] else 1
    DOC.write_text(doc)
    text = README.read_text()
    if START in text:
        text = re.sub(
            re.escape(START) + ".*?" + re.escape(END), lambda _: summary, text, flags=re.S
        )
        README.write_text(text)
    else:
        print("README.md has no onnx-conformance markers; only the doc was written")
    print(f"{got[0]} / {got[1]} pass; wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
