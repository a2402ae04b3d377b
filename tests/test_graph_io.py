"""Graph files (JSON + raw arrays), DOT/Graphviz pictures and TensorBoard graphs."""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ember
from ember import symbol as S
from ember.compiler import Dim, Eqn, Graph, Var, interpret, load, trace_graph
from ember.compiler.dot import GraphvizNotFoundError
from ember.compiler.ir import Ratio
from ember.compiler.prims import InputRef
from ember.compiler.serialize import GraphFormatError

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(1)


def _train_fn():
    x = S.var("x", ("n", 3))
    y = S.var("y", ("n",))
    w = S.shared(np.array([0.5, -0.25, 0.1], np.float32), "w")
    p = ember.sigmoid(x @ w)
    cost = ember.nn.functional.binary_cross_entropy(p, y)
    return S.function([x, y], [cost, p], updates=[(w, w - 0.5 * S.grad(cost, w))]), w


def _data(n=6):
    x = RNG.normal(size=(n, 3)).astype(np.float32)
    y = (RNG.random(n) > 0.5).astype(np.float32)
    return x, y


def test_save_load_runs_and_updates_like_the_original(tmp_path):
    f, w = _train_fn()
    path = tmp_path / "train.json"
    f.save(path)
    g = S.load(path)
    assert g.input_names == ["x", "y"] and set(g.shared_values()) == {"w"}
    for n in (6, 2):
        x, y = _data(n)
        (c1, p1), (c2, p2) = f(x, y), g(x, y)
        assert c1.tolist() == c2.tolist() and p1.tolist() == p2.tolist()
    assert g.shared_values()["w"].tolist() == w.get_value().tolist()
    doc = json.loads(path.read_text())
    assert doc["format"] == "ember-graph" and doc["data_file"] == "train.json.bin"
    assert "pickle" not in path.read_text()
    # no temporary files are left next to the graph
    assert sorted(os.listdir(tmp_path)) == ["train.json", "train.json.bin"]


_FRESH = """
import json, sys, numpy as np
import ember
f = ember.symbol.load(sys.argv[1])
x = np.load(sys.argv[2])
y = np.load(sys.argv[3])
for _ in range(3):
    cost, p = f(x, y)
print(json.dumps([cost.item(), f.shared_values()["w"].tolist()]))
"""


def test_loaded_graph_runs_in_a_fresh_process_without_the_building_code(tmp_path):
    f, w = _train_fn()
    f.save(tmp_path / "g.json")
    x, y = _data(5)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    for _ in range(3):
        cost, _p = f(x, y)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run(
        [sys.executable, "-c", _FRESH, *(str(tmp_path / n) for n in ("g.json", "x.npy", "y.npy"))],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [cost.item(), w.get_value().tolist()]


def test_example_saves_a_graph_that_a_fresh_process_runs(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "symbolic_logreg.py"),
            "--steps",
            "40",
            "--save",
            str(tmp_path / "lr.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    acc = float(out.stdout.split("test accuracy: ")[1].split()[0])
    assert acc > 0.8, out.stdout
    code = (
        "import sys, ember, numpy as np\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from symbolic_logreg import make_data\n"
        "x, y = make_data()\n"
        "p = ember.symbol.load(sys.argv[1])(x[300:]).numpy()\n"
        "print(((p > 0.5) == (y[300:] > 0.5)).mean())\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "lr.json"), str(ROOT / "examples")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert float(r.stdout) == pytest.approx(acc)


def test_traced_graph_with_constants_round_trips(tmp_path):
    c = ember.tensor([[1.0, 2.0, 3.0]])

    def fn(x):
        return ((x + c) * 2).softmax(-1)[:, 1:], x.sum(0)

    x = ember.tensor(RNG.normal(size=(4, 3)).astype(np.float32))
    g = trace_graph(fn, x)
    g.save(tmp_path / "t.json")
    h = load(tmp_path / "t.json")
    assert h.primitives() == g.primitives()
    a = interpret(g, [x.numpy()])
    b = interpret(h, [x.numpy()])
    for u, v in zip(a, b):
        assert u.dtype == v.dtype and np.array_equal(u, v)
    assert str(h) == str(g)


class _Fake:
    """A stand-in primitive params test: identity with arbitrary params."""


def _identity_graph(params):
    from ember.ops.elementwise import neg_p

    x = Var((Dim("B"), 2), ember.float32)
    y = Var((Dim("B"), 2), ember.float32)
    return Graph(
        inputs=[x], eqns=[Eqn(neg_p, [x], params, [y])], outputs=[y], symbols={"B": (0, 0)}
    )


def test_param_encoding_round_trips_every_tagged_kind(tmp_path):
    params = {
        "t": (1, (2, 3), ()),
        "l": [1, None, True, "s"],
        "f": (math.nan, math.inf, -math.inf, 0.5),
        "dt": (ember.float16, ember.int64, np.dtype("float32")),
        "sl": (slice(1, None, 2), slice(None), Ellipsis),
        "dim": (Dim("B", 2, -1),),
        "np": (np.float32(1.5), np.int64(7), np.bool_(True)),
        "c": 1 + 2j,
        "arr": np.arange(6, dtype=np.int32).reshape(2, 3),
        "d": {"k": (1,)},
        "ratio": Ratio("B", 1.0, 0.0, 1.0, -1.0, {3: 1.5}),
        "ref": (InputRef(1),),
    }
    g = _identity_graph(params)
    g.save(tmp_path / "p.json")
    p = load(tmp_path / "p.json").eqns[0].params
    assert p["t"] == (1, (2, 3), ()) and p["l"] == [1, None, True, "s"]
    assert math.isnan(p["f"][0]) and p["f"][1:] == (math.inf, -math.inf, 0.5)
    assert p["dt"][:2] == (ember.float16, ember.int64) and p["dt"][2] == np.dtype("float32")
    assert p["sl"] == (slice(1, None, 2), slice(None), Ellipsis)
    assert p["dim"] == (Dim("B", 2, -1),)
    assert [type(v) for v in p["np"]] == [np.float32, np.int64, np.bool_] and p["np"][1] == 7
    assert p["c"] == 1 + 2j and p["d"] == {"k": (1,)}
    assert p["arr"].dtype == np.int32 and p["arr"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert p["ratio"] == params["ratio"] and p["ratio"].eval({"B": 3}) == 1.5
    assert p["ref"] == (InputRef(1),)


def test_lifted_index_primitives_round_trip(tmp_path):
    x, i = ember.arange(6.0).reshape(3, 2), ember.tensor([2, 0])
    g = trace_graph(lambda x, i: x[i] * 2, x, i)
    g.save(tmp_path / "g.json")
    h = load(tmp_path / "g.json")
    assert type(h.eqns[0].prim) is type(g.eqns[0].prim)
    idx = np.array([1, 1, 0])
    assert interpret(h, [x.numpy(), idx])[0].tolist() == (x.numpy()[idx] * 2).tolist()


def test_values_without_an_encoding_are_refused_by_name(tmp_path):
    g = _identity_graph({"bad": _Fake()})
    with pytest.raises(
        GraphFormatError, match=r"equation 0 \(neg\), param 'bad': a value of type _Fake"
    ):
        g.save(tmp_path / "x.json")
    g = _identity_graph({"fn": print})
    with pytest.raises(GraphFormatError, match="param 'fn'"):
        g.save(tmp_path / "x.json")
    assert not os.listdir(tmp_path)  # nothing half-written


def test_unregistered_primitive_is_refused(tmp_path):
    from ember.ops._core import AbstractValue, Primitive

    p = Primitive(
        "local_op",
        "elementwise",
        impl=np.negative,
        register=False,
        abstract=lambda x: AbstractValue(x.shape, x.dtype),
    )
    x, y = Var((2,), ember.float32), Var((2,), ember.float32)
    g = Graph(inputs=[x], eqns=[Eqn(p, [x], {}, [y])], outputs=[y])
    with pytest.raises(GraphFormatError, match="'local_op' is not registered"):
        g.save(tmp_path / "x.json")


def test_bad_files_give_clear_errors(tmp_path):
    x = S.var("x", ("n",))
    f = S.function([x], x * 2 + ember.tensor(1.0))
    f.save(tmp_path / "a.json")
    # the array file from another save
    S.function([x], x * 3 + ember.tensor([5.0])).save(tmp_path / "b.json")
    os.replace(tmp_path / "b.json.bin", tmp_path / "a.json.bin")
    with pytest.raises(GraphFormatError, match="does not belong to this graph file"):
        load(tmp_path / "a.json")
    (tmp_path / "c.json").write_text('{"hello": 1}')
    with pytest.raises(GraphFormatError, match="not an ember graph file"):
        load(tmp_path / "c.json")
    (tmp_path / "d.json").write_text("not json")
    with pytest.raises(GraphFormatError, match="not JSON"):
        load(tmp_path / "d.json")
    f.save(tmp_path / "e.json")
    doc = json.loads((tmp_path / "e.json").read_text())
    doc["eqns"][0]["prim"] = "no_such_prim"
    (tmp_path / "e.json").write_text(json.dumps(doc))
    with pytest.raises(
        GraphFormatError, match="primitive 'no_such_prim', which this ember does not have"
    ):
        load(tmp_path / "e.json")


# -- pictures --------------------------------------------------------------------------------


def test_to_dot_shows_inputs_state_ops_and_types():
    f, _w = _train_fn()
    dot = f.graph.to_dot()
    assert dot.startswith("digraph ember {") and dot.rstrip().endswith("}")
    assert 'label="x\\nf32[n,3]"' in dot and 'label="w\\nf32[3]"' in dot
    assert "matmul" in dot and "assign!" in dot and "sigmoid" in dot
    assert '[label="f32[n,3]"]' in dot  # edges carry types
    assert dot.count("{") == dot.count("}")


def test_render_without_graphviz_names_what_to_install(tmp_path, monkeypatch):
    import ember.compiler.dot as D

    monkeypatch.setattr(D.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "graphviz", None)
    g = trace_graph(lambda x: x.exp(), ember.ones(2))
    with pytest.raises(GraphvizNotFoundError, match="install Graphviz"):
        g.render(tmp_path / "g.svg")
    with pytest.raises(ValueError, match="'svg' or 'png'"):
        g.render(tmp_path / "g.pdf", format="pdf")


def test_render_runs_dot(tmp_path, monkeypatch):
    import shutil

    exe = shutil.which("dot")
    if exe is None:  # a stand-in for Graphviz that checks what it is given
        exe = tmp_path / "dot"
        exe.write_text(
            "#!/bin/sh\n"
            'case "$1" in -Tsvg) ;; *) echo "bad format $1" >&2; exit 2;; esac\n'
            'grep -q "digraph ember" && echo "<svg>fake</svg>"\n'
        )
        exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    g = trace_graph(lambda x: x.exp().sum(), ember.ones(2))
    out = g.render(tmp_path / "g.svg")
    assert out == str(tmp_path / "g.svg")
    assert "<svg" in (tmp_path / "g.svg").read_text()


# -- TensorBoard -----------------------------------------------------------------------------


def _graph_def(logdir):
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = ea.EventAccumulator(str(logdir))
    acc.Reload()
    return acc.Graph()


def test_add_graph_of_a_symbolic_function(tmp_path):
    from ember.summary import SummaryWriter

    f, _w = _train_fn()
    with SummaryWriter(tmp_path) as wr:
        wr.add_graph(f)
    nodes = {n.name: n for n in _graph_def(tmp_path).node}
    assert nodes["input/x"].op == "IO Node" and nodes["w"].op == "Parameter"
    shp = nodes["input/x"].attr["_output_shapes"].list.shape[0]
    assert [(d.size, d.name) for d in shp.dim] == [(-1, "n"), (3, "")]
    mm = next(n for n in nodes.values() if n.op == "matmul")
    assert set(mm.input) >= {"input/x"}
    assert any(n.op == "assign" and "w" in n.input for n in nodes.values())
    for n in nodes.values():
        for i in n.input:
            assert i.split(":")[0] in nodes


def test_add_graph_of_a_traced_function_includes_no_grad_ops(tmp_path):
    from ember.summary import SummaryWriter

    lin = ember.nn.Linear(3, 2)

    def fn(x):
        with ember.no_grad():
            scale = x.abs().max()
        return lin(x) / scale

    with SummaryWriter(tmp_path) as wr:
        wr.add_graph(fn, ember.ones(4, 3))
    ops = [n.op for n in _graph_def(tmp_path).node]
    assert "abs" in ops and ("linear" in ops or "matmul" in ops)
    assert lin.weight.grad is None


def test_compiled_training_step_graph_saves_and_reruns(tmp_path):
    # a whole ember.compile training step (forward, backward, SGD update, Ratio and
    # HyperParam params) as a file: the loaded graph updates its own copy of the weights
    ember.manual_seed(0)
    lin = ember.nn.Linear(3, 2)
    opt = ember.optim.SGD(lin.parameters(), lr=0.1)

    def step(x, y):
        opt.zero_grad()
        loss = ((lin(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    x = ember.tensor(RNG.normal(size=(4, 3)).astype(np.float32))
    y = ember.tensor(RNG.normal(size=(4, 2)).astype(np.float32))
    cstep = ember.compile(step)
    g = cstep.graph(x, y)
    g.save(tmp_path / "step.json")
    h = load(tmp_path / "step.json")
    w0 = [p.detach().numpy().copy() for p in lin.parameters()]
    want = [cstep(x, y).item() for _ in range(2)]
    got = [interpret(h, [x.numpy(), y.numpy()])[0].item() for _ in range(2)]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got[0] != got[1]  # the loaded graph updated its own copy of the weights
    assert [p.detach().numpy().tolist() for p in lin.parameters()] != [w.tolist() for w in w0]
