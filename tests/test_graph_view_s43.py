"""Seeing compiled graphs as users produce them: ``graph()`` printing, ``to_dot()`` through the
real Graphviz ``dot`` program, ``render``, TensorBoard's graph tab (``add_graph`` read back with
TensorBoard's own reader) and ``EMBER_COMPILE_DEBUG`` catching a broken kernel."""

from __future__ import annotations

import copy
import math
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import nn
from ember.compiler import trace_graph
from ember.compiler.dot import GraphvizNotFoundError
from ember.compiler.executor import CompileDebugError
from ember.compiler.passes.fuse import fuse_elementwise
from ember.ops._core import REGISTRY
from ember.summary import SummaryWriter

DOT = shutil.which("dot") or "dot"  # the real Graphviz program (apt install graphviz)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        x = self.pool(F.relu(self.bn(self.conv(x))))
        return self.fc(x.flatten(1))


class Block(nn.Module):
    """A transformer block with attention written out."""

    def __init__(self, d=8, h=2):
        super().__init__()
        self.h = h
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = (
            z.reshape(b, t, self.h, d // self.h).transpose(1, 2)
            for z in self.qkv(self.ln1(x)).chunk(3, dim=-1)
        )
        att = ((q @ k.transpose(-2, -1)) / math.sqrt(d // self.h)).softmax(dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


def _cnn_step(model):
    opt = ember.optim.Adam(model.parameters(), lr=1e-2)

    @ember.compile
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def _block_step(model):
    opt = ember.optim.Adam(model.parameters(), lr=1e-2)

    @ember.compile
    def step(x):
        opt.zero_grad()
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
        return loss

    return step


def _cnn_data(b, seed=0):
    g = np.random.default_rng(seed)
    x = ember.tensor(g.standard_normal((b, 3, 8, 8)).astype(np.float32))
    return x, ember.tensor(g.integers(0, 5, b))


def _svg(dot_text: str) -> str:
    r = subprocess.run([DOT, "-Tsvg"], input=dot_text.encode(), capture_output=True, check=False)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr == b"", r.stderr.decode()  # no warnings either
    return r.stdout.decode()


def _n_nodes(svg: str) -> int:
    return svg.count('class="node"')


def _expected_nodes(g) -> int:
    return len(g.inputs) + len(g.captured) + len(g.eqns) + len(g.outputs)


# -- 1. printing and DOT of whole training steps -----------------------------------------------


def test_cnn_training_step_prints_with_symbolic_batch_and_dot_parses():
    ember.manual_seed(0)
    model = CNN()
    twin = copy.deepcopy(model)
    step = _cnn_step(model)
    opt = ember.optim.Adam(twin.parameters(), lr=1e-2)
    for b in (4, 5, 6):  # the compiled step trains as eager code does
        x, y = _cnn_data(b, b)
        got = step(x, y).item()
        opt.zero_grad()
        loss = F.cross_entropy(twin(x), y)
        loss.backward()
        opt.step()
        assert got == pytest.approx(loss.item(), rel=1e-5)
    g = step.graph(*_cnn_data(4))
    text = str(g)
    assert re.search(r"f32\[B,3,8,8\] \w+:i64\[B\]\. let", text)
    for p in ("conv2d", "batch_norm_train", "max_pool2d", "cross_entropy", "adam_update!"):
        assert p in text
    # multi-output primitives print every output
    assert re.search(r"\w+:f32\[B,4,8,8\] \w+:f32\[4\] \w+:f32\[4\] = batch_norm_train", text)
    dot = g.to_dot()
    svg = _svg(dot)
    assert "<svg" in svg and _n_nodes(svg) == _expected_nodes(g)
    assert "conv.weight\\nf32[4,3,3,3]" in dot and "f32[B,3,8,8]" in dot
    # the edges out of batch_norm_train say which output they carry
    bn = next(k for k, e in enumerate(g.eqns) if e.prim.name == "batch_norm_train")
    for j in (1, 2):
        if any(g.eqns[bn].outputs[j] is v for e in g.eqns for v in e.inputs):
            assert re.search(rf'e{bn} -> e\d+ \[label="#{j} f32\[4\]"\]', dot)
    # the optimizer's params (reprs with quotes and brackets) survive as labels
    assert "group['lr']" in svg.replace("&#39;", "'")


def test_transformer_block_step_prints_and_dot_parses():
    ember.manual_seed(1)
    step = _block_step(Block())
    for b in (2, 3, 4):
        step(ember.randn(b, 5, 8))
    g = step.graph(ember.randn(2, 5, 8))
    text = str(g)
    assert "f32[B,5,8]. let" in text and "f32[B,2,5,5] = matmul" in text
    for p in ("layer_norm", "gelu", "gelu_grad", "layer_norm_backward", "linear_backward"):
        assert f" = {p} " in text
    svg = _svg(g.to_dot())
    assert _n_nodes(svg) == _expected_nodes(g)
    # the executor's graph (what runs) draws too
    entry = next(iter(step.cache.values()))
    pg = entry.program.graph
    assert _n_nodes(_svg(pg.to_dot())) == _expected_nodes(pg)


def test_fused_groups_show_what_they_compute():
    g = trace_graph(
        lambda x, y: ((x * 2 + y).exp() - 1).sum(dim=1), ember.ones(4, 8), ember.ones(4, 8)
    )
    fg = fuse_elementwise(g, min_elements=0)
    fused = [e for e in fg.eqns if e.prim.name == "fused"]
    assert fused, fg.primitives()
    dot = fg.to_dot()
    m = re.search(r'label="fused\[([a-z_,]+)\]', dot)
    assert m is not None and {"mul", "add", "exp"} <= set(m.group(1).split(","))
    assert _n_nodes(_svg(dot)) == _expected_nodes(fg)


def test_awkward_names_and_graph_names_do_not_break_dot_syntax():
    from ember import symbol as S

    names = ['say "hi"', "a<b>c", "{braces}", "back\\slash", "x\\", "dict={'k': [1]}", "é ü"]
    xs = [S.var(n, ("n", 2)) for n in names]
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    f = S.function(xs, out.exp())
    for gname in ("ember", "my graph", "graph", "node", "2x", 'q"uote'):
        dot = ember.compiler.dot.to_dot(f.graph, name=gname)
        svg = _svg(dot)
        assert _n_nodes(svg) == _expected_nodes(f.graph)
    import html

    text = html.unescape(svg)
    for n in names:
        assert n.replace("\\\\", "\\") in text or n in text


# -- 2. rendering through Graphviz -------------------------------------------------------------


def test_render_svg_and_png_of_a_compiled_step(tmp_path):
    ember.manual_seed(2)
    step = _cnn_step(CNN())
    g = step.graph(*_cnn_data(3))
    out = g.render(tmp_path / "step.svg")
    assert out == str(tmp_path / "step.svg")
    svg = (tmp_path / "step.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and _n_nodes(svg) == _expected_nodes(g)
    g.render(tmp_path / "step.png", format="png")
    assert (tmp_path / "step.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_render_without_dot_on_path_names_graphviz(tmp_path, monkeypatch):
    import sys

    g = trace_graph(lambda x: x.relu().sum(), ember.ones(2, 3))
    monkeypatch.setenv("PATH", "")
    monkeypatch.setitem(sys.modules, "graphviz", None)
    with pytest.raises(
        GraphvizNotFoundError, match=r"install Graphviz \(apt install graphviz"
    ) as ei:
        g.render(tmp_path / "g.svg")
    assert ei.value.__cause__ is None and "to_dot()" in str(ei.value)
    assert not (tmp_path / "g.svg").exists()
    # a 'dot' on PATH that cannot run (a broken install) says so too, not an OSError
    bad = tmp_path / "bin"
    bad.mkdir()
    (bad / "dot").write_bytes(b"\x00\x01not a program")
    (bad / "dot").chmod(0o755)
    monkeypatch.setenv("PATH", str(bad))
    with pytest.raises(GraphvizNotFoundError, match="install Graphviz") as ei:
        g.render(tmp_path / "g.svg")
    assert str(bad / "dot") in str(ei.value) and ei.value.__cause__ is None


# -- 3. TensorBoard's graph tab ----------------------------------------------------------------


def _graph_def(logdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return acc.Graph()


def _dims(node, k=0):
    return [(d.size, d.name) for d in node.attr["_output_shapes"].list.shape[k].dim]


def _check_wired(gd):
    names = {n.name for n in gd.node}
    for n in gd.node:
        for i in n.input:
            assert i.split(":")[0] in names, (n.name, i)


def test_add_graph_of_a_cnn_module_scopes_by_module_path(tmp_path):
    ember.manual_seed(3)
    model = CNN()
    before = [p.detach().numpy().copy() for p in model.parameters()]
    rm = model.bn.running_mean.numpy().copy()
    with SummaryWriter(tmp_path) as w:
        w.add_graph(model, ember.randn(2, 3, 8, 8))
    gd = _graph_def(tmp_path)
    nodes = {n.name: n for n in gd.node}
    _check_wired(gd)
    assert nodes["conv/weight"].op == "Parameter" and nodes["fc/bias"].op == "Parameter"
    conv = nodes["conv/conv2d_0"]
    assert conv.op == "conv2d" and list(conv.input) == ["input/input.0", "conv/weight", "conv/bias"]
    bn = nodes["bn/batch_norm_train_0"]
    assert list(bn.input) == ["conv/conv2d_0", "bn/weight", "bn/bias"]
    assert _dims(bn, 0) == [(2, ""), (4, ""), (8, ""), (8, "")] and _dims(bn, 1) == [(4, "")]
    assert any("bn/batch_norm_train_0:1" in n.input for n in gd.node)  # second output wired
    assert nodes["relu_0"].input == ["bn/batch_norm_train_0"]  # no parameters: no scope
    assert nodes["fc/linear_0"].input[1:] == ["fc/weight", "fc/bias"]
    assert nodes["output/output.0"].input == ["fc/linear_0"]
    # a dry run: nothing trained, no running statistics updated
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.detach().numpy(), b)
    np.testing.assert_array_equal(model.bn.running_mean.numpy(), rm)


def test_add_graph_of_a_compiled_training_step_has_symbolic_dims(tmp_path):
    ember.manual_seed(4)
    step = _cnn_step(CNN())
    with SummaryWriter(tmp_path) as w:
        w.add_graph(step, list(_cnn_data(3)))
    gd = _graph_def(tmp_path)
    nodes = {n.name: n for n in gd.node}
    _check_wired(gd)
    assert _dims(nodes["input/input.0"]) == [(-1, "B"), (3, ""), (8, ""), (8, "")]
    assert _dims(nodes["input/input.1"]) == [(-1, "B")]
    assert _dims(nodes["conv/conv2d_0"]) == [(-1, "B"), (4, ""), (8, ""), (8, "")]
    ops = [n.op for n in gd.node]
    assert "linear_backward" in ops and ops.count("adam_update") == 6
    adam = [n for n in gd.node if n.op == "adam_update"]
    assert {n.name.split("/")[0] for n in adam} == {"conv", "bn", "fc"}
    assert any("fc/weight" in n.input for n in adam)


def test_add_graph_of_a_compiled_module_uses_its_own_names(tmp_path):
    ember.manual_seed(5)
    block = Block()
    cm = ember.compile(block)
    want = block(ember.ones(2, 5, 8)).detach().numpy()
    np.testing.assert_allclose(cm(ember.ones(2, 5, 8)).detach().numpy(), want, rtol=1e-5, atol=1e-6)
    with SummaryWriter(tmp_path) as w:
        w.add_graph(cm, ember.randn(3, 5, 8))
    gd = _graph_def(tmp_path)
    nodes = {n.name: n for n in gd.node}
    _check_wired(gd)
    assert not any(n.startswith("_orig_mod") for n in nodes)
    assert {"ln1/weight", "qkv/weight", "fc2/bias"} <= set(nodes)
    assert _dims(nodes["input/input.0"])[1:] == [(5, ""), (8, "")]
    assert nodes["input/input.0"].attr["_output_shapes"].list.shape[0].dim[0].size in (-1, 3)
    ops = {n.op for n in gd.node}
    assert {"layer_norm", "gelu", "matmul"} <= ops and "linear_backward" not in ops
    assert any(n.startswith("qkv/linear_") for n in nodes)


# -- 4. EMBER_COMPILE_DEBUG ------------------------------------------------------------------


@pytest.fixture
def broken(monkeypatch):
    """Break one primitive's kernel (after tracing) by adding 1 to its result."""

    def brk(name):
        prim = REGISTRY[name]
        orig = prim.impl
        monkeypatch.setattr(prim, "impl", lambda *a, **k: orig(*a, **k) + 1.0)

    return brk


def test_debug_mode_passes_on_a_correct_step_and_names_a_broken_kernel(monkeypatch, broken):
    monkeypatch.setenv("EMBER_COMPILE_DEBUG", "1")
    ember.manual_seed(6)
    model = CNN()
    twin = copy.deepcopy(model)
    step = _cnn_step(model)
    opt = ember.optim.Adam(twin.parameters(), lr=1e-2)
    for b in (4, 5, 4):
        x, y = _cnn_data(b, b)
        got = step(x, y).item()
        opt.zero_grad()
        loss = F.cross_entropy(twin(x), y)
        loss.backward()
        opt.step()
        assert got == pytest.approx(loss.item(), rel=1e-5)
    assert all(e.program.debug for e in step.cache.values() if hasattr(e, "program"))
    broken("relu")
    with pytest.raises(CompileDebugError, match=r"equation \d+ \(relu\) differs") as ei:
        step(*_cnn_data(4))
    msg = str(ei.value)
    assert msg.startswith("EMBER_COMPILE_DEBUG:") and "max abs error 1" in msg
    assert "shape (4, 4, 8, 8)" in msg


def test_debug_mode_names_a_broken_kernel_in_a_transformer_block(monkeypatch, broken):
    monkeypatch.setenv("EMBER_COMPILE_DEBUG", "1")
    ember.manual_seed(7)
    step = _block_step(Block())
    for b in (2, 3):
        step(ember.randn(b, 5, 8))
    broken("gelu")
    with pytest.raises(CompileDebugError, match=r"equation \d+ \(gelu\) differs"):
        step(ember.randn(2, 5, 8))
    assert os.environ["EMBER_COMPILE_DEBUG"] == "1"
