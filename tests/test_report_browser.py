"""What a person sees, checked in a real browser (headless Chromium over the DevTools pipe):
the report of two ``ember train`` runs draws its curves and confusion matrices without
console errors, and TensorBoard, started on a run's folder (bound to 127.0.0.1, stopped at
the end), shows the run's scalar tags, and its data provider and dashboards show the
histograms, images, text, graph and hparams Ember's ``SummaryWriter`` writes.

Chromium comes from Debian's ``chromium`` package (README's install line; ``.ci/run`` installs
it). Without it these tests skip saying so, except under CI (``$CI`` set), where a missing
browser is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("yaml")
pytest.importorskip("sklearn")

import ember
from ember.cli.main import main as ember_main
from ember.report import load_run, write_report
from ember.report.chromium import Browser, find_chromium

if find_chromium() is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI must have Chromium: .ci/run installs Debian's chromium package")
    pytest.skip(
        "no Chromium on this machine (Debian: apt-get install chromium; or set EMBER_CHROMIUM)",
        allow_module_level=True,
    )

CFG = """\
model:
  input_shape: [1, 8, 8]
  layers: [Flatten, {Linear: {out_features: 16}}, ReLU, {Linear: {out_features: 10}}]
data: {dataset: Digits, batch_size: 128, val_split: 0.2, test: true}
solver: {optimizer: {name: adam, lr: LR}, schedule: {name: cosine}, epochs: 3, seed: 1}
snapshot: {dir: RUN, every: 1, keep_last: 1}
logging: {tensorboard: true, csv: true}
"""

# every text node of the page, shadow DOMs included (TensorBoard's Polymer dashboards)
DEEP_TEXT = """(() => { const out = [], skip = new Set(["STYLE", "SCRIPT", "TEMPLATE"]);
  const walk = (n) => { if (n.shadowRoot) walk(n.shadowRoot);
    for (const c of n.childNodes) { if (c.nodeType === 3) out.push(c.textContent);
      else if (c.nodeType === 11 || (c.nodeType === 1 && !skip.has(c.tagName))) walk(c); } };
  walk(document.body); return out.join(" ").replace(/\\s+/g, " "); })()"""
DEEP_COUNT = """((sel) => { let k = 0; const walk = (n) => { k += n.querySelectorAll(sel).length;
  for (const e of n.querySelectorAll("*")) if (e.shadowRoot) walk(e.shadowRoot); };
  walk(document); return k; })"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two short ``ember train`` runs differing in their learning rate."""
    root = tmp_path_factory.mktemp("runs")
    out = []
    for name, lr in (("fast", 0.01), ("slow", 0.002)):
        cfg = root / f"{name}.yaml"
        cfg.write_text(CFG.replace("RUN", str(root / name)).replace("LR", str(lr)))
        assert ember_main(["train", str(cfg), "--quiet"]) == 0
        out.append(str(root / name))
    return out


def test_report_of_two_runs_renders_in_chromium(runs, tmp_path):
    page = write_report([load_run(r) for r in runs], str(tmp_path / "report.html"))
    with Browser(width=1200, height=900) as b:
        b.open("file://" + os.path.abspath(page))
        figs = b.evaluate(
            """[...document.querySelectorAll("figure.plot")].map(f => {
                 const s = f.querySelector("svg"), r = s ? s.getBoundingClientRect() : null;
                 return {id: f.id, w: r ? r.width : 0, h: r ? r.height : 0,
                         paths: f.querySelectorAll("svg path").length,
                         images: f.querySelectorAll("svg image").length}; })"""
        )
        shot = b.screenshot(str(tmp_path / "report.png"))
        errors = list(b.errors)
    by_id = {f["id"]: f for f in figs}
    for fid in ("epoch-loss", "epoch-accuracy", "step-loss", "lr", "timing"):
        f = by_id[f"fig-{fid}"]
        assert f["w"] > 200 and f["h"] > 100, f
        assert f["paths"] >= 10, f  # axes, ticks and one line per run and split
    for i in (0, 1):  # the matrix is an embedded image of the class grid, with its colorbar
        f = by_id[f"fig-confusion-{i}"]
        assert f["w"] > 200 and f["images"] >= 1, f
    assert errors == []
    with open(shot, "rb") as fh:
        data = fh.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def _post(url: str, body: dict):
    req = urllib.request.Request(
        url, json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _listening(port: int) -> list[str]:
    """The addresses with a socket listening on ``port`` (Linux's /proc/net/tcp{,6})."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as f:
            for line in list(f)[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, _, p = local.partition(":")
                if state == "0A" and int(p, 16) == port:  # 0A: LISTEN
                    raw = bytes.fromhex(addr)
                    if len(raw) == 4:
                        out.append(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                    else:  # four little-endian 32-bit words
                        words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                        out.append(socket.inet_ntop(socket.AF_INET6, words))
    return out


def test_tensorboard_shows_the_runs_tags(runs, tmp_path):
    pytest.importorskip("tensorboard")
    import numpy as np

    from ember.summary import SummaryWriter

    logdir = runs[0]  # runs: tensorboard/ (written by ember train) and extras/ (below)
    with SummaryWriter(os.path.join(logdir, "extras")) as w:
        for step in range(2):
            w.add_histogram("weights", np.random.default_rng(step).normal(size=100), step)
        w.add_image("digit", np.random.default_rng(0).random((1, 8, 8)), 0)
        w.add_text("note", "trained by **ember**", 0)
        w.add_hparams({"lr": 0.01, "optimizer": "adam"}, {"hparam/accuracy": 0.9}, run_name="hp")
        from collections import OrderedDict

        layers = [("fc1", ember.nn.Linear(64, 16)), ("act", ember.nn.ReLU())]
        net = ember.nn.Sequential(OrderedDict([*layers, ("fc2", ember.nn.Linear(16, 10))]))
        w.add_graph(net, ember.randn(2, 64))
    port = _free_port()
    exe = shutil.which("tensorboard")
    cmd = [exe] if exe else [sys.executable, "-m", "tensorboard.main"]
    log = open(tmp_path / "tensorboard.log", "w")  # noqa: SIM115 - closed in finally
    server = subprocess.Popen(
        [*cmd, "--logdir", logdir, "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                tags = _get(f"{base}/data/plugin/scalars/tags")
                if tags:
                    break
            except OSError:
                pass
            assert server.poll() is None, (tmp_path / "tensorboard.log").read_text()
            assert time.monotonic() < deadline, "TensorBoard did not start in 90 s"
            time.sleep(0.5)
        # the data API: the run's train/ and validation/ scalars with 3 epochs
        expected = {"train/loss", "train/accuracy", "train/learning_rate"}
        expected |= {"validation/loss", "validation/accuracy"}
        run_name = "tensorboard"
        assert expected <= set(tags[run_name])
        values = _get(f"{base}/data/plugin/scalars/scalars?run={run_name}&tag=train/loss")
        assert [v[1] for v in values] == [0, 1, 2]
        logged = load_run(runs[0]).epochs["loss"]
        assert [v[2] for v in values] == pytest.approx(logged, rel=1e-5)
        # the other kinds of events Ember writes open in their dashboards too
        assert "weights" in _get(f"{base}/data/plugin/histograms/tags")["extras"]
        assert "digit" in _get(f"{base}/data/plugin/images/tags")["extras"]
        # PyTorch writes text under TAG/text_summary
        assert _get(f"{base}/data/plugin/text/tags")["extras"] == ["note/text_summary"]
        listing = _get(f"{base}/data/plugins_listing")
        for plugin in ("scalars", "histograms", "images", "text", "hparams", "graphs"):
            assert listing[plugin]["enabled"], plugin
        # ...and TensorBoard's data provider reads their values back
        hist = _get(f"{base}/data/plugin/histograms/histograms?run=extras&tag=weights")
        assert [h[1] for h in hist] == [0, 1] and all(sum(b[2] for b in h[2]) == 100 for h in hist)
        (img,) = _get(f"{base}/data/plugin/images/images?run=extras&tag=digit&sample=0")
        with urllib.request.urlopen(
            f"{base}/data/plugin/images/individualImage?{img['query']}", timeout=5
        ) as r:
            png = r.read()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        (text,) = _get(f"{base}/data/plugin/text/text?run=extras&tag=note/text_summary")
        assert "<strong>ember</strong>" in text["text"]  # its markdown rendered
        assert _get(f"{base}/data/plugin/graphs/info")["extras"]["run_graph"] is True
        with urllib.request.urlopen(f"{base}/data/plugin/graphs/graph?run=extras", timeout=5) as r:
            graph = r.read().decode()
        assert graph.count("node {") > 5 and "fc1/weight" in graph and "fc2/bias" in graph
        assert 'op: "relu"' in graph and "backward" not in graph  # the forward graph only
        exp = _post(f"{base}/data/plugin/hparams/experiment", {"experimentName": ""})
        assert sorted(h["name"] for h in exp["hparamInfos"]) == ["lr", "optimizer"]
        groups = _post(
            f"{base}/data/plugin/hparams/session_groups",
            {
                "experimentName": "",
                "allowedStatuses": ["STATUS_SUCCESS"],
                "startIndex": 0,
                "sliceSize": 10,
            },
        )["sessionGroups"]
        assert [g["hparams"] for g in groups] == [{"lr": 0.01, "optimizer": "adam"}]
        assert groups[0]["metricValues"][0]["value"] == pytest.approx(0.9)
        # the server listens on the loopback address only
        assert _listening(port) == ["127.0.0.1"]
        # the page: the scalars dashboard lists every tag as a chart card
        with Browser(width=1400, height=2400) as b:  # tall: cards render when in view
            # the tag filter puts every matching chart in one open section (TensorBoard shows
            # only the first two categories expanded)
            b.open(f"{base}/#scalars&tagFilter=train%7Cvalidation")
            cond = " && ".join(f"t.includes('tag: {t}')" for t in sorted(expected))
            b.wait_for(f"(t => {cond})({DEEP_TEXT})", timeout=60)
            charts = b.wait_for(f"{DEEP_COUNT}('svg, canvas')", timeout=30)
            b.screenshot(str(tmp_path / "tensorboard.png"), full_page=False)
            # the other dashboards show what Ember wrote for them
            for dashboard, words in (
                ("histograms", ["tag: weights"]),
                ("images", ["tag: digit"]),
                ("text", ["note/text_summary", "trained by ember"]),
                ("graphs", ["fc1", "fc2", "relu_0"]),  # module scopes and a top-level op
                ("hparams", ["extras/hp", "adam", "hparam/accuracy"]),
            ):
                b.open("about:blank")  # a new document: a hash change alone fires no load
                b.open(f"{base}/#{dashboard}")
                cond = " && ".join(f"t.includes({w!r})" for w in words)
                b.wait_for(f"(t => {cond})({DEEP_TEXT})", timeout=60)
            uncaught = [e for e in b.errors if e.startswith("uncaught")]
        assert charts >= len(expected)
        assert uncaught == []
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    with pytest.raises(OSError):  # stopped: nothing answers on its port any more
        _get(f"{base}/data/plugins_listing")
