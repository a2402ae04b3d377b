"""Compiled training in the engine (``Engine``/``Trainer(compile=...)``, Keras
``jit_compile``, ``ember train --compile``): every run equals the eager one (losses, logs,
metrics, weights, checkpoints), one graph per mode with no retrace per step or for the last
smaller batch, graph breaks fall back with a warning, and bad values are refused."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

import ember
from ember import keras, nn
from ember.data import DataLoader, TensorDataset
from ember.train import Engine, Task, Trainer, load_checkpoint

RTOL = 1e-5


def _data(n=30, shape=(4,), classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, *shape)).astype(np.float32)
    y = rng.integers(0, classes, n)
    return ember.tensor(x), ember.tensor(y)


class _Lit(nn.Module):
    """A Lightning-style module: its steps call ``self(x)``."""

    def __init__(self, net, lr=0.05):
        super().__init__()
        self.net, self.lr = net, lr

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        out = self(x)
        self.log("val_loss", nn.functional.cross_entropy(out, y))
        self.log("val_acc", (out.argmax(-1) == y).float().mean())

    def configure_optimizers(self):
        return ember.optim.Adam(self.parameters(), lr=self.lr)


def _mlp():
    return nn.Sequential(
        nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.BatchNorm1d(16), nn.Linear(16, 3)
    )


def _cnn():
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(0.25),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3, 3),
    )


def _fit(make, compile, data, epochs=2, batch_size=8, **kw):
    ember.manual_seed(0)
    model = _Lit(make())
    loader = DataLoader(TensorDataset(*data), batch_size=batch_size)
    trainer = Trainer(max_epochs=epochs, verbose=0, compile=compile, **kw)
    trainer.fit(model, loader, loader)
    preds = trainer.predict(model, loader)
    val = trainer.validate(model, loader)
    return trainer, model, preds, val


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        np.testing.assert_allclose(sa[k].numpy(), sb[k].numpy(), rtol=RTOL, atol=1e-6, err_msg=k)


def _same_logs(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=RTOL, err_msg=k)


@pytest.mark.parametrize("make, shape", [(_mlp, (4,)), (_cnn, (2, 6, 6))])
def test_trainer_compiled_equals_eager(make, shape):
    data = _data(30, shape)  # batches of 8, 8, 8 and 6: the last one is smaller
    te, me, pe, ve = _fit(make, False, data)
    tc, mc, pc, vc = _fit(make, True, data)
    _same_logs(te.history.history, tc.history.history)
    _same_logs(te.callback_metrics, tc.callback_metrics)
    _same_logs(ve[0], vc[0])
    _same_state(me, mc)
    for a, b in zip(pe, pc, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=RTOL, atol=1e-6)
    ex = ember.compile.explain(tc.engine.compiled_forward)
    # one graph for training, one for evaluation (train/eval BatchNorm and dropout, no grad),
    # whatever the batch size; no retrace per step
    assert ex.traces == 2 and not ex.graph_breaks, str(ex)
    assert ex.calls == 2 * 4 + 2 * 4 + 4 + 4  # fit (train + val), predict, validate
    assert "forward" not in mc.__dict__  # the module's own forward again after the run
    assert not any("_orig_mod" in k for k in mc.state_dict())


def test_accumulation_and_clipping_match_eager():
    data = _data(28)
    kw = {"accumulate_grad_batches": 2, "gradient_clip_val": 0.05, "epochs": 3}
    te, me, _, _ = _fit(_mlp, False, data, **kw)
    tc, mc, _, _ = _fit(_mlp, True, data, **kw)
    assert te.global_step == tc.global_step == 6
    _same_logs(te.history.history, tc.history.history)
    _same_state(me, mc)
    clip = {**kw, "gradient_clip_algorithm": "value", "gradient_clip_val": 0.01}
    _same_state(_fit(_mlp, False, data, **clip)[1], _fit(_mlp, True, data, **clip)[1])


@pytest.mark.parametrize("first, second", [(True, False), (False, True)])
def test_checkpoint_resumes_across_modes(tmp_path, first, second):
    data = _data(24)
    loader = DataLoader(TensorDataset(*data), batch_size=8)
    ember.manual_seed(0)
    full = _Lit(_mlp())
    Trainer(max_epochs=4, verbose=0).fit(full, loader)

    ember.manual_seed(0)
    part = _Lit(_mlp())
    t1 = Trainer(max_epochs=2, verbose=0, compile=first)
    t1.fit(part, loader)
    path = str(tmp_path / "ck.ckpt")
    t1.save_checkpoint(path)
    assert not any(k.startswith("_orig_mod.") for k in load_checkpoint(path)["model"])
    resumed = _Lit(_mlp())
    t2 = Trainer(max_epochs=4, verbose=0, compile=second)
    t2.fit(resumed, loader, ckpt_path=path)
    assert t2.global_step == 12
    _same_state(full, resumed)


def test_trainer_takes_a_module_compiled_by_ember_compile():
    data = _data(20)
    loader = DataLoader(TensorDataset(*data), batch_size=8)
    ember.manual_seed(0)
    eager = _Lit(_mlp())
    Trainer(max_epochs=2, verbose=0).fit(eager, loader)
    ember.manual_seed(0)
    model = _Lit(_mlp())
    compiled = ember.compile(model)
    t = Trainer(max_epochs=2, verbose=0)
    t.fit(compiled, loader)
    assert t.engine.model is model  # trained as the original module: its own state keys
    assert ember.compile.explain(t.engine.compiled_forward).traces == 1
    _same_state(eager, model)


def test_engine_task_with_numpy_batches_does_not_retrace():
    from ember.train import ArrayLoader

    def run(compile):
        ember.manual_seed(0)
        net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))

        class Reg(Task):
            def train_step(self, batch, batch_idx):
                x, y = batch
                loss = nn.functional.mse_loss(net(x), y)
                self.log("loss", loss)
                return loss

        eng = Engine(
            net,
            Reg(),
            optimizers=[ember.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)],
            verbose=0,
            compile=compile,
        )
        x = np.random.default_rng(1).normal(size=(21, 3)).astype(np.float32)
        h = eng.fit(ArrayLoader((x, x[:, :1] * 2), batch_size=5, shuffle=True, seed=3), epochs=3)
        return h.history, net, eng

    he, ne, _ = run(False)
    hc, nc, eng = run({"dynamic": True, "fullgraph": True})
    _same_logs(he, hc)
    _same_state(ne, nc)
    ex = ember.compile.explain(eng.compiled_forward)
    assert ex.traces == 1 and ex.calls == 15, str(ex)


class _Breaks(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        out = self.lin(x)
        if out.sum().item() > 1e9:  # reads a value in Python: a graph break
            out = out * 0
        return out


def test_graph_break_warns_with_the_line_and_runs_eagerly():
    data = _data(16)
    te, me, _, _ = _fit(_Breaks, False, data, epochs=1)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        tc, mc, _, _ = _fit(_Breaks, True, data, epochs=1)
    msgs = [str(w.message) for w in rec if "graph break" in str(w.message)]
    assert msgs and os.path.basename(__file__) in msgs[0], msgs
    assert ember.compile.explain(tc.engine.compiled_forward).graph_breaks
    _same_state(me, mc)
    _same_logs(te.history.history, tc.history.history)
    with pytest.raises(Exception, match="item"):  # fullgraph=True: an error instead
        _fit(_Breaks, {"fullgraph": True}, data, epochs=1)


@pytest.mark.parametrize(
    "value, exc, words",
    [
        ("yes", TypeError, "compile must be True, False or a dict"),
        (1, TypeError, "compile must be True, False or a dict"),
        ({"fullgrpah": True}, ValueError, "unknown ember.compile option"),
        ({"fullgraph": "no"}, TypeError, "'fullgraph' must be a bool"),
        ({"mode": "fastest"}, ValueError, "unknown mode"),
        ({"recompile_limit": 0}, ValueError, "recompile_limit"),
    ],
)
def test_bad_compile_values(value, exc, words):
    with pytest.raises(exc, match=words):
        Trainer(compile=value)
    with pytest.raises(exc, match=words):
        Engine(None, Task(), compile=value)


# -- Keras ----------------------------------------------------------------------------------
def _keras_sequential():
    return keras.Sequential(
        [
            keras.layers.Dense(16, activation="relu", input_shape=(4,)),
            keras.layers.Dropout(0.3),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(3),
        ]
    )


def _keras_functional():
    inp = keras.Input((4,))
    h = keras.layers.Dense(8, activation="tanh")(inp)
    h = keras.layers.Dropout(0.2)(h)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(h))


@pytest.mark.parametrize(
    "make, loss",
    [
        (_keras_sequential, keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
        (_keras_functional, "sparse_categorical_crossentropy"),
    ],
)
def test_keras_jit_compile_equals_eager(make, loss):
    x, y = (a.numpy() for a in _data(50))
    out = []
    for jit in (False, True):
        ember.manual_seed(0)
        m = make()
        m.compile("adam", loss, metrics=["accuracy"], jit_compile=jit)
        assert m.jit_compile is jit and m.run_eagerly is False
        h = m.fit(
            x,
            y,
            batch_size=16,
            epochs=2,
            validation_data=(x[:20], y[:20]),
            shuffle=False,
            verbose=0,
        )
        ev = m.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
        pred = m.predict(x, batch_size=16, verbose=0)
        out.append((h.history, ev, pred, m.get_weights(), m))
    (he, ee, pe, we, _), (hc, ec, pc, wc, mc) = out
    _same_logs(he, hc)
    _same_logs(ee, ec)
    np.testing.assert_allclose(pe, pc, rtol=RTOL, atol=1e-6)
    for a, b in zip(we, wc, strict=True):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=1e-6)
    # fit, evaluate and predict share the model's compiled forward: a graph for training,
    # one for inference, across every batch size (50 = 16 + 16 + 16 + 2)
    ex = ember.compile.explain(mc._jit_forward.fn)
    assert ex.traces == 2 and not ex.graph_breaks, str(ex)
    assert "forward" not in mc.__dict__


def test_keras_flags_follow_keras():
    m = _keras_sequential()
    assert m.jit_compile is False and m.run_eagerly is False
    m.compile("sgd", "mse")  # jit_compile="auto": eager, as Keras' torch backend resolves it
    assert m.jit_compile is False
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        m.compile("sgd", "mse", jit_compile=True, run_eagerly=True)
    msg = (
        "If `run_eagerly` is True, then `jit_compile` cannot also be True. Disabling `jit_compile`."
    )
    assert [str(w.message) for w in rec] == [msg]
    # Keras 3's own words (its source, to keep the message in step with it)
    import importlib.util

    spec = importlib.util.find_spec("keras")
    src = os.path.join(os.path.dirname(spec.origin), "src", "trainers", "trainer.py")
    with open(src) as f:
        text = " ".join(f.read().split())
    assert '"If `run_eagerly` is True, then `jit_compile` " "cannot also be True.' in text
    assert m.jit_compile is False and m.run_eagerly is True
    m.jit_compile = True
    assert m.jit_compile is True
    with pytest.raises(ValueError, match="jit_compile must be True, False or 'auto'"):
        m.jit_compile = "xla"


# -- ember train ----------------------------------------------------------------------------
TINY = """\
model:
  input_shape: [1, 8, 8]
  layers:
    - Flatten
    - Linear: {out_features: 16}
    - ReLU
    - Dropout: {p: 0.2}
    - Linear: {out_features: 10}
data: {dataset: Digits, batch_size: 128, val_split: 0.1, test: false}
solver: {optimizer: {name: adam, lr: 0.01}, epochs: 1, seed: 1COMPILE}
snapshot: {dir: RUN}
logging: {tensorboard: false, csv: false}
"""


def test_ember_train_compiled_equals_eager(tmp_path, capsys, caplog):
    pytest.importorskip("yaml")
    from ember.cli import run
    from ember.cli.main import main as cli_main

    def cfg(name, compile_line):
        p = tmp_path / f"{name}.yaml"
        p.write_text(TINY.replace("RUN", str(tmp_path / name)).replace("COMPILE", compile_line))
        return str(p)

    eager = run.train(cfg("eager", ""), verbose=0)
    with caplog.at_level("INFO", logger="ember.compile"):
        compiled = run.train(cfg("compiled", ", compile: true"), verbose=0)
    traced = [r.getMessage() for r in caplog.records if r.name == "ember.compile"]
    assert len(traced) == 2 and "first call" in traced[0], traced  # train + eval graphs
    assert cli_main(["train", cfg("flag", ""), "--compile", "--quiet"]) in (0, None)
    assert f"loss={eager['loss']:.4f}" in capsys.readouterr().out
    with open(tmp_path / "flag" / "config.json") as f:
        assert json.load(f)["solver"]["compile"] is True
    for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(eager[k], compiled[k], rtol=RTOL, err_msg=k)
    a, b = run.load_model(eager["model"]), run.load_model(compiled["model"])
    a, b = (m[0] if isinstance(m, tuple) else m for m in (a, b))
    _same_state(a, b)


@pytest.mark.parametrize("value", ["sure", "1", "'true'", "{a: 1}"])
def test_ember_train_config_refuses_bad_compile_values(tmp_path, value):
    pytest.importorskip("yaml")
    from ember.cli import config as C

    p = tmp_path / "cfg.yaml"
    p.write_text(f"model: {{layers: [Flatten]}}\nsolver: {{compile: {value}}}\n")
    with pytest.raises(C.ConfigError, match=r"solver\.compile.*expected a boolean"):
        C.load_config(str(p))
    good = tmp_path / "good.yaml"
    good.write_text("model: {layers: [Flatten]}\n")
    assert C.load_config(str(good))["solver"]["compile"] is False
    with pytest.raises(C.ConfigError, match=r"solver\.compile.*expected a boolean"):
        C.load_config(str(good), ["solver.compile=maybe"])
