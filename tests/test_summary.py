import glob
import os
import struct

import numpy as np
import pytest

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.plugins.hparams import plugin_data_pb2

import ember
from ember.summary import SummaryWriter, crc32c, masked_crc32c

KEEP_ALL = {
    ea.SCALARS: 0,
    ea.HISTOGRAMS: 0,
    ea.IMAGES: 0,
    ea.TENSORS: 0,
    ea.GRAPH: 0,
    ea.COMPRESSED_HISTOGRAMS: 0,
}


def _load(path):
    acc = ea.EventAccumulator(str(path), size_guidance=KEEP_ALL)
    acc.Reload()
    return acc


def test_crc32c_known_vectors():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert isinstance(masked_crc32c(b"abc"), int)


def test_event_file_name_and_framing(tmp_path):
    with SummaryWriter(tmp_path, filename_suffix=".x") as w:
        w.add_scalar("a", 1.0, 0)
        path = w.file_path
    name = os.path.basename(path)
    assert name.startswith("events.out.tfevents.") and name.endswith(".x")
    assert str(os.getpid()) in name
    with open(path, "rb") as f:
        data = f.read()
    # walk the TFRecord framing and check every crc
    off, n = 0, 0
    while off < len(data):
        (length,) = struct.unpack("<Q", data[off : off + 8])
        (hcrc,) = struct.unpack("<I", data[off + 8 : off + 12])
        assert hcrc == masked_crc32c(data[off : off + 8])
        payload = data[off + 12 : off + 12 + length]
        (dcrc,) = struct.unpack("<I", data[off + 12 + length : off + 16 + length])
        assert dcrc == masked_crc32c(payload)
        off += 16 + length
        n += 1
    assert off == len(data) and n == 2  # file_version + one scalar


def test_scalars(tmp_path):
    with SummaryWriter(tmp_path) as w:
        for step in range(5):
            w.add_scalar("loss/train", 1.0 / (step + 1), step)
        w.add_scalar("lr", ember.tensor(0.5), global_step=7, walltime=123.0)
        w.add_scalar("acc", np.float32(0.25), 3)
    acc = _load(tmp_path)
    assert set(acc.Tags()["scalars"]) == {"loss/train", "lr", "acc"}
    ev = acc.Scalars("loss/train")
    assert [e.step for e in ev] == list(range(5))
    np.testing.assert_allclose([e.value for e in ev], [1.0 / (s + 1) for s in range(5)], rtol=1e-6)
    lr = acc.Scalars("lr")[0]
    assert (lr.step, lr.value, lr.wall_time) == (7, 0.5, 123.0)
    with pytest.raises(ValueError, match="single value"):
        SummaryWriter(tmp_path / "x").add_scalar("bad", np.ones(3), 0)


def test_flush_makes_events_visible_before_close(tmp_path):
    w = SummaryWriter(tmp_path, max_queue=1000)
    w.add_scalar("s", 2.0, 1)
    w.flush()
    assert _load(tmp_path).Scalars("s")[0].value == 2.0
    w.close()
    w.close()  # idempotent
    with pytest.raises(RuntimeError):
        w.add_scalar("s", 1.0, 2)


def test_add_scalars_layout(tmp_path):
    with SummaryWriter(tmp_path) as w:
        for step in range(3):
            w.add_scalars("run/loss", {"train": step * 1.0, "val": step * 2.0}, step)
    for sub, factor in (("run_loss_train", 1.0), ("run_loss_val", 2.0)):
        d = tmp_path / sub
        assert d.is_dir()
        ev = _load(d).Scalars("run/loss")
        assert [e.step for e in ev] == [0, 1, 2]
        assert [e.value for e in ev] == [0.0, factor, 2 * factor]


@pytest.mark.parametrize("bins", ["tensorflow", 10, "auto"])
def test_histogram(tmp_path, bins):
    rng = np.random.default_rng(0)
    v = rng.normal(size=1000)
    with SummaryWriter(tmp_path) as w:
        w.add_histogram("w", v, 1, bins=bins)
        w.add_histogram("w", ember.tensor(v.astype(np.float32)), 2, bins=bins)
    ev = _load(tmp_path).Histograms("w")
    assert [e.step for e in ev] == [1, 2]
    h = ev[0].histogram_value
    assert h.num == 1000 and h.min == pytest.approx(v.min()) and h.max == pytest.approx(v.max())
    assert h.sum == pytest.approx(v.sum()) and h.sum_squares == pytest.approx((v * v).sum())
    assert sum(h.bucket) == 1000
    assert list(h.bucket_limit) == sorted(h.bucket_limit)
    if bins == 10:
        assert len(h.bucket) == 11  # an empty left bucket + 10


def test_histogram_tensorflow_buckets_hold_values(tmp_path):
    v = np.array([0.0, 1.0, 1.0, -2.5])
    with SummaryWriter(tmp_path) as w:
        w.add_histogram("h", v, 0)
    h = _load(tmp_path).Histograms("h")[0].histogram_value
    lims, cnt = np.array(h.bucket_limit), np.array(h.bucket)
    for x in np.unique(v):  # each value lies in the bucket [lims[i-1], lims[i])
        i = np.searchsorted(lims, x, side="right")
        assert cnt[i] == np.count_nonzero(v == x)


def test_images(tmp_path):
    pytest.importorskip("PIL")
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    chw = rng.random((3, 8, 6)).astype(np.float32)
    hwc = (rng.random((5, 4, 3)) * 255).astype(np.uint8)
    hw = rng.random((7, 9))
    with SummaryWriter(tmp_path) as w:
        w.add_image("chw", ember.tensor(chw), 0)
        w.add_image("hwc", hwc, 1, dataformats="HWC")
        w.add_image("hw", hw, 2, dataformats="HW")
        w.add_images("batch", rng.random((4, 3, 5, 5)), 3)
        with pytest.raises(ValueError, match="dataformats"):
            w.add_image("bad", chw, 0, dataformats="HWC")
    acc = _load(tmp_path)
    ev = acc.Images("chw")[0]
    assert (ev.step, ev.height, ev.width) == (0, 8, 6)
    img = np.asarray(Image.open(io.BytesIO(ev.encoded_image_string)))
    np.testing.assert_array_equal(img, np.round(chw.transpose(1, 2, 0) * 255).astype(np.uint8))
    ev = acc.Images("hwc")[0]
    img = np.asarray(Image.open(io.BytesIO(ev.encoded_image_string)))
    np.testing.assert_array_equal(img, hwc)
    ev = acc.Images("hw")[0]
    assert (ev.height, ev.width) == (7, 9)
    ev = acc.Images("batch")[0]
    assert (ev.step, ev.height, ev.width) == (3, 10, 10)


def test_text(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_text("notes", "hello **world**", 4)
    acc = _load(tmp_path)
    ev = acc.Tensors("notes/text_summary")
    assert ev[0].step == 4
    assert ev[0].tensor_proto.string_val[0].decode() == "hello **world**"
    md = acc.SummaryMetadata("notes/text_summary")
    assert md.plugin_data.plugin_name == "text"


def test_hparams(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_hparams(
            {"lr": 0.1, "bs": 32, "opt": "adam", "bn": True},
            {"hparam/accuracy": 0.9},
            run_name="trial0",
        )
    acc = _load(tmp_path / "trial0")
    assert acc.Scalars("hparam/accuracy")[0].value == pytest.approx(0.9)
    md = acc.SummaryMetadata("_hparams_/session_start_info")
    assert md.plugin_data.plugin_name == "hparams"
    data = plugin_data_pb2.HParamsPluginData.FromString(md.plugin_data.content)
    hp = data.session_start_info.hparams
    assert hp["lr"].number_value == 0.1 and hp["bs"].number_value == 32
    assert hp["opt"].string_value == "adam" and hp["bn"].bool_value is True
    exp = plugin_data_pb2.HParamsPluginData.FromString(
        acc.SummaryMetadata("_hparams_/experiment").plugin_data.content
    ).experiment
    assert [m.name.tag for m in exp.metric_infos] == ["hparam/accuracy"]
    assert {h.name for h in exp.hparam_infos} == {"lr", "bs", "opt", "bn"}
    with pytest.raises(TypeError):
        SummaryWriter(tmp_path / "y").add_hparams([1], {})


class _MLP:
    """A duck-typed model: named_parameters() and __call__."""

    def __init__(self):
        ember.manual_seed(0)
        self.w1 = ember.randn(4, 8, requires_grad=True)
        self.b1 = ember.zeros(8, requires_grad=True)
        self.w2 = ember.randn(8, 3, requires_grad=True)

    def named_parameters(self):
        return [("fc1.weight", self.w1), ("fc1.bias", self.b1), ("fc2.weight", self.w2)]

    def __call__(self, x):
        return ((x @ self.w1 + self.b1).relu() @ self.w2).tanh()


def test_graph(tmp_path):
    model = _MLP()
    x = ember.randn(2, 4)
    with SummaryWriter(tmp_path) as w:
        w.add_graph(model, x)
    gd = _load(tmp_path).Graph()
    nodes = {n.name: n for n in gd.node}
    assert {"input/input.0", "fc1/weight", "fc1/bias", "fc2/weight", "output/output.0"} <= set(
        nodes
    )
    assert nodes["fc1/weight"].op == "Parameter"
    assert nodes["input/input.0"].op == "IO Node"
    ops = [n.op for n in gd.node if n.op not in ("IO Node", "Parameter")]
    assert ops.count("matmul") == 2 and "relu" in ops and "tanh" in ops and "add" in ops
    # edges: the first matmul reads the input and fc1/weight; output reads tanh
    mm0 = nodes["matmul_0"]
    assert set(mm0.input) == {"input/input.0", "fc1/weight"}
    assert nodes[nodes["output/output.0"].input[0]].op == "tanh"
    shp = nodes["matmul_0"].attr["_output_shapes"].list.shape[0]
    assert [d.size for d in shp.dim] == [2, 8]
    # every input refers to an existing node
    for n in gd.node:
        for i in n.input:
            assert i.split(":")[0] in nodes
    # the model's own parameters are untouched
    assert model.w1.grad is None


def test_graph_with_ember_nn(tmp_path):
    try:
        from ember import nn

        model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    except Exception as exc:  # noqa: BLE001  (ember.nn is optional here)
        pytest.skip(f"ember.nn not usable: {exc}")
    with SummaryWriter(tmp_path) as w:
        w.add_graph(model, ember.randn(3, 4))
    names = {n.name for n in _load(tmp_path).Graph().node}
    assert {"0/weight", "0/bias", "2/weight", "2/bias"} <= names


def test_default_logdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with SummaryWriter(comment="_abc") as w:
        w.add_scalar("x", 1.0, 0)
    runs = glob.glob(str(tmp_path / "runs" / "*_abc"))
    assert len(runs) == 1 and glob.glob(os.path.join(runs[0], "events.out.tfevents.*"))


def test_missing_tensorboard_names_the_extra(tmp_path, monkeypatch):
    import sys

    from ember.summary import writer as W

    monkeypatch.setattr(W, "_P", None)
    monkeypatch.setitem(sys.modules, "tensorboard.compat.proto", None)
    with pytest.raises(ImportError, match=r"ember\[tensorboard\]"):
        SummaryWriter(tmp_path)


def test_missing_pillow_names_the_extra(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "PIL", None)
    with SummaryWriter(tmp_path) as w, pytest.raises(ImportError, match="pillow"):
        w.add_image("x", np.zeros((3, 2, 2)), 0)
