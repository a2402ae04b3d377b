"""bench/bench_zoo.py compares like with like: the Ember and PyTorch models it times have the
same parameter names and counts, and one measurement runs end to end."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import bench_zoo  # noqa: E402 - bench/ is put on the path first

import ember  # noqa: E402

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("case", ["resnet18_train", "minilm_train"])
def test_same_architecture_in_both_frameworks(case):
    spec = bench_zoo.CASES[case]
    em, _, _, _ = bench_zoo._build(ember, spec)
    tm, _, _, _ = bench_zoo._build(torch, spec)
    e = {k: tuple(v.shape) for k, v in em.named_parameters()}
    t = {k: tuple(v.shape) for k, v in tm.named_parameters()}
    assert e == t


def test_measure_runs():
    r = bench_zoo.measure_zoo(ember, "minilm_infer", budget=0.001)
    assert r["ms"] > 0 and r["items_per_s"] > 0
    with pytest.raises(SystemExit):
        bench_zoo.main(["--cases", "nope"])
