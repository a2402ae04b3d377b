"""The benchmark harness (``bench/``): the protocol runs each framework in its own process and
parses what it reports; every workload and every op case runs from one source in both
frameworks and agrees with PyTorch. No timing is asserted."""

from __future__ import annotations

import doctest
import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import ember  # noqa: E402 - after the torch importorskip

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
import _protocol as P  # noqa: E402 - bench/ is put on the path above
import bench_data  # noqa: E402
import bench_ops  # noqa: E402
import bench_overhead  # noqa: E402
import bench_train  # noqa: E402
import workloads  # noqa: E402


def test_abba_alternates_the_order():
    assert P.abba(4) == [
        ("ember", "torch"),
        ("torch", "ember"),
        ("ember", "torch"),
        ("torch", "ember"),
    ]


def test_ratio_summary_is_median_and_spread():
    assert P.ratio_summary([0.8, 1.4, 1.0, 1.2]) == (1.1, 0.8, 1.4)
    with pytest.raises(ValueError, match="no ratios"):
        P.ratio_summary([])


def test_compare_runs_each_framework_per_repeat_in_abba_order(monkeypatch):
    calls = []

    def fake_child(module, function, fw, params, threads, keep):
        calls.append(fw)
        return {"fw": fw, "threads": threads}

    monkeypatch.setattr(P, "run_child", fake_child)
    runs = P.compare("m", "f", {}, repeats=3, threads=2)
    assert calls == ["ember", "torch", "torch", "ember", "ember", "torch"]
    assert [sorted(r) for r in runs] == [["ember", "torch"]] * 3
    assert runs[1]["torch"] == {"fw": "torch", "threads": 2}
    with pytest.raises(ValueError, match="repeats"):
        P.compare("m", "f", {}, repeats=0)


def test_child_env_drops_blas_variables_unless_kept(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "1048576")
    env = P.child_env(threads=3)
    assert "OPENBLAS_CORETYPE" not in env and "OPENBLAS_L2_SIZE" not in env
    assert env["EMBER_NUM_THREADS"] == env["OMP_NUM_THREADS"] == "3"
    assert env["PYTHONPATH"].split(os.pathsep)[:2] == [P.BENCH_DIR, P.REPO_DIR]
    kept = P.child_env(keep_blas_env=True)
    assert kept["OPENBLAS_CORETYPE"] == "Haswell"
    assert P.dropped_blas_env(False) == ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"]
    assert P.dropped_blas_env(True) == []


def test_cpu_info_reads_proc_cpuinfo():
    info = P.cpu_info()
    assert set(info) == {"model", "vendor", "simd"}
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            text = f.read()
        assert info["model"] in text and info["vendor"] in text


def test_bench_ops_end_to_end_in_subprocesses(capsys):
    """Header (a probe process per framework) and one repeat of a tiny op, each framework
    in its own process; the table row is parsed back."""
    rows = bench_ops.bench(
        ["sum"], "float32", repeats=1, threads=1, budget=0.002, keep_blas_env=False
    )
    assert [r["op"] for r in rows] == ["sum"]
    for mode in ("fwd", "fwdbwd"):
        cell = rows[0][mode]
        assert cell["ember"] > 0 and cell["torch"] > 0
        assert cell["ratio"] == pytest.approx(cell["torch"] / cell["ember"])
    out = capsys.readouterr().out
    assert "| sum | (16, 128, 1024) last axis |" in out


def test_header_names_machine_blas_threads_and_versions(monkeypatch):
    """The header's probes, run in-process here (their subprocess path is the one above)."""
    monkeypatch.setattr(
        P, "run_child", lambda m, f, fw, threads, keep_blas_env: P.probe(sys.modules[fw])
    )
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    head = P.header("title", 1, False, P.THROUGHPUT)
    cpu = P.cpu_info()
    assert head.startswith("# title\n")
    assert f"CPU: {cpu['model']} (vendor {cpu['vendor']}" in head
    assert f"ember {ember.__version__}: {ember.get_num_threads()} threads" in head
    assert f"torch {torch.__version__}: {torch.get_num_threads()} threads" in head
    assert "BLAS" in head and "MKL" in head and "numba" in head
    assert "dropped OPENBLAS_CORETYPE for the children" in head
    assert "convention: ratio = Ember / PyTorch throughput" in head
    assert "load average" in head


def test_child_failure_names_the_child():
    with pytest.raises(P.ChildError, match="ember child bench_ops.no_such_function"):
        P.run_child("bench_ops", "no_such_function", "ember")
    with pytest.raises(ValueError, match="unknown framework"):
        P.import_framework("jax", 1)


def test_time_per_call_is_positive():
    assert 0 < P.time_per_call(lambda: None, budget=0.001) < 0.01


@pytest.mark.parametrize("name", list(workloads.SPECS))
def test_workload_one_step_same_loss(name):
    torch.set_num_threads(2)
    tm, topt, tbatch, tloss = workloads.build(torch, name, small=True)
    em, eopt, _, eloss = workloads.build(ember, name, small=True)
    workloads.copy_weights(tm, em, ember)
    batch = [tbatch()]
    lt = workloads.train_steps(torch, tm, topt, tloss, batch)
    le = workloads.train_steps(ember, em, eopt, eloss, batch)
    np.testing.assert_allclose(le, lt, rtol=1e-5)


def test_gpt_written_matches_fused_gpt():
    """The written-out attention computes what the fused SDPA one does."""
    ref, _, make, _ = workloads.build(ember, "gpt", small=True)
    wri, _, _, _ = workloads.build(ember, "gpt_written", small=True)
    assert set(ref.state_dict()) == set(wri.state_dict())  # the mask is not persistent
    wri.load_state_dict(ref.state_dict())
    x, _ = make()
    with ember.no_grad():
        a, b = wri(ember.from_numpy(x)), ref(ember.from_numpy(x))
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)


def test_unknown_workload_is_named():
    with pytest.raises(ValueError, match="unknown workload 'vgg'"):
        workloads.build(ember, "vgg")


@pytest.mark.parametrize("op", list(bench_ops.CASES))
def test_op_cases_agree_with_pytorch(op):
    """Every case of the op table runs from one source in both frameworks, with the same
    values and gradients (float64; dropout: the same shape and keep rate)."""
    small = bench_ops.cases(small=True)[op]
    assert len(small) == len(bench_ops.CASES[op])
    for i, (label, specs, fn) in enumerate(small):
        te, le = bench_ops._inputs(ember, specs, "float64", True, seed=i)
        tt, lt = bench_ops._inputs(torch, specs, "float64", True, seed=i)
        oe, ot = fn(ember, *te), fn(torch, *tt)
        assert tuple(oe.shape) == tuple(ot.shape), label
        if op == "dropout":
            keep = (oe.detach().numpy() != 0).mean()
            assert abs(keep - 0.9) < 0.01, label
        else:
            np.testing.assert_allclose(
                oe.detach().numpy(), ot.detach().numpy(), rtol=1e-7, atol=1e-9, err_msg=label
            )
        g = np.random.default_rng(1).standard_normal(tuple(ot.shape))
        oe.backward(ember.from_numpy(g))
        ot.backward(torch.from_numpy(g))
        assert len(le) == len(lt) > 0
        for a, b in zip(le, lt):
            if op != "dropout":
                np.testing.assert_allclose(
                    a.grad.numpy(), b.grad.numpy(), rtol=1e-7, atol=1e-9, err_msg=label
                )
            a.grad = None
        # the timed fwd+bwd step itself runs and leaves no gradient behind
        bench_ops._fwd_bwd(ember, fn, te, le, "float64")()
        assert all(a.grad is None for a in le)


def test_measure_functions_run_in_process():
    """The child-side measurements, called directly with tiny budgets."""
    r = bench_train.measure_train(ember, "mlp", seconds=0.01)
    assert r["steps_per_s"] > 0 and r["steps"] >= 3
    m = bench_train.measure_memory(ember, "mlp", steps=1)
    assert m["peak_mib"] >= m["base_mib"] > 0
    o = bench_overhead.measure_overhead(torch, budget=0.002)
    assert set(o) == set(bench_overhead.CASES) and all(v > 0 for v in o.values())


@pytest.mark.parametrize(
    "module", [P, workloads, bench_train, bench_ops, bench_overhead, bench_data]
)
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0
