"""``SummaryWriter``: TensorBoard event files, with PyTorch's ``SummaryWriter`` API.

The protobuf classes come from the ``tensorboard`` package (the ``ember[tensorboard]``
extra), imported lazily when the first writer is created.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import datetime

import numpy as np

from ._record import EventFileWriter

__all__ = ["SummaryWriter"]


# ------------------------------------------------------------------------------------------
# lazy protobufs
# ------------------------------------------------------------------------------------------
class _Protos:
    pass


_P = None


def _protos():
    global _P
    if _P is not None:
        return _P
    try:
        from tensorboard.compat.proto import (
            attr_value_pb2,
            event_pb2,
            graph_pb2,
            node_def_pb2,
            summary_pb2,
            tensor_pb2,
            tensor_shape_pb2,
            versions_pb2,
        )
    except ImportError as exc:
        raise ImportError(
            "ember.summary needs the 'tensorboard' package for its protobufs: "
            "pip install 'ember[tensorboard]'"
        ) from exc
    p = _Protos()
    p.Event, p.Summary = event_pb2.Event, summary_pb2.Summary
    p.SummaryMetadata, p.HistogramProto = summary_pb2.SummaryMetadata, summary_pb2.HistogramProto
    p.TensorProto, p.TensorShapeProto = tensor_pb2.TensorProto, tensor_shape_pb2.TensorShapeProto
    p.GraphDef, p.NodeDef = graph_pb2.GraphDef, node_def_pb2.NodeDef
    p.AttrValue, p.VersionDef = attr_value_pb2.AttrValue, versions_pb2.VersionDef
    _P = p
    return p


def _to_np(x):
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "numpy"):
        d = x.detach()
        if hasattr(d, "cpu"):
            d = d.cpu()
        return np.asarray(d.numpy())
    return np.asarray(x)


def _scalar(value, what):
    arr = _to_np(value)
    if arr.size != 1:
        raise ValueError(f"{what}: expected a single value, got shape {tuple(arr.shape)}")
    return float(arr.reshape(()))


# ------------------------------------------------------------------------------------------
# histogram
# ------------------------------------------------------------------------------------------
def _tf_bucket_limits():
    """TensorFlow's default histogram bucket limits (exponential, ratio 1.1)."""
    pos = []
    v = 1e-12
    while v < 1e20:
        pos.append(v)
        v *= 1.1
    big = np.finfo(np.float64).max
    return np.array([-big] + [-x for x in reversed(pos)] + [0.0] + pos + [big])


_TF_LIMITS = None


def _histogram(values, bins, max_bins=None):
    p = _protos()
    v = _to_np(values).astype(np.float64).ravel()
    if v.size == 0:
        raise ValueError("add_histogram: values are empty")
    if not np.all(np.isfinite(v)):
        raise ValueError("add_histogram: values contain nan or inf")
    if isinstance(bins, str) and bins == "tensorflow":
        global _TF_LIMITS
        if _TF_LIMITS is None:
            _TF_LIMITS = _tf_bucket_limits()
        edges = _TF_LIMITS  # right limits: bucket i holds [edges[i-1], edges[i])
        idx = np.searchsorted(edges, v, side="right")
        counts = np.bincount(idx, minlength=edges.size).astype(np.float64)
        nz = np.flatnonzero(counts)
        lo, hi = max(int(nz[0]) - 1, 0), int(nz[-1]) + 1
        limits, counts = edges[lo:hi], counts[lo:hi]
    else:
        counts, e = np.histogram(v, bins=bins)
        counts = counts.astype(np.float64)
        if max_bins is not None and counts.size > max_bins:
            k = -(-counts.size // max_bins)
            pad = (-counts.size) % k
            counts = np.pad(counts, (0, pad)).reshape(-1, k).sum(1)
            e = np.r_[e[:-1:k], e[-1]]
        # TensorBoard keeps right limits only: start with an empty bucket at the left edge
        limits = np.r_[e[0], e[1:]]
        counts = np.r_[0.0, counts]
    return p.HistogramProto(
        min=float(v.min()),
        max=float(v.max()),
        num=float(v.size),
        sum=float(v.sum()),
        sum_squares=float(np.dot(v, v)),
        bucket_limit=limits.tolist(),
        bucket=counts.tolist(),
    )


# ------------------------------------------------------------------------------------------
# images
# ------------------------------------------------------------------------------------------
def _to_hwc(img, dataformats):
    df = dataformats.upper()
    if sorted(df) != sorted(set(df)) or not set(df) <= set("NCHW") or img.ndim != len(df):
        raise ValueError(
            f"add_image: image of shape {tuple(img.shape)} does not match "
            f"dataformats={dataformats!r}"
        )
    if "C" not in df:
        img, df = img[..., None], df + "C"
    if "N" in df:
        raise ValueError("add_image: use add_images for a batch (dataformats with 'N')")
    shape = img.shape
    img = np.transpose(img, [df.index(c) for c in "HWC"])
    c = img.shape[2]
    if c not in (1, 3, 4):
        raise ValueError(
            f"add_image: expected 1, 3 or 4 channels, got {c} (image of shape "
            f"{tuple(shape)} read with dataformats={dataformats!r})"
        )
    return img


def _to_uint8(img):
    """uint8 as is; floats (and bools) in [0, 1] scaled by 255; other ints taken as 0..255.
    Out-of-range values are clipped (PyTorch's rule)."""
    if img.dtype == np.uint8:
        return img
    if img.dtype.kind in "fb":
        img = img.astype(np.float32) * 255.0
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _encode_png(hwc_uint8):
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError(
            "add_image encodes PNG with Pillow: pip install 'ember[data]' (or pillow)"
        ) from exc
    import io

    arr = hwc_uint8
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[arr.shape[2]]
    if arr.shape[2] == 1:
        arr = arr[:, :, 0]
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr), mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def _image_proto(hwc):
    p = _protos()
    h, w, c = hwc.shape
    return p.Summary.Image(
        height=h, width=w, colorspace=c, encoded_image_string=_encode_png(_to_uint8(hwc))
    )


def _grid(imgs_nhwc):
    """Tile N images into a near-square grid (like torchvision.utils.make_grid)."""
    n, h, w, c = imgs_nhwc.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    out = np.zeros((rows * h, cols * w, c), dtype=imgs_nhwc.dtype)
    for i in range(n):
        r, q = divmod(i, cols)
        out[r * h : (r + 1) * h, q * w : (q + 1) * w] = imgs_nhwc[i]
    return out


# ------------------------------------------------------------------------------------------
# the writer
# ------------------------------------------------------------------------------------------
class SummaryWriter:
    """Write TensorBoard event files (PyTorch's ``SummaryWriter`` API).

    Args:
        log_dir: the run directory; default ``runs/<date>_<host><comment>``.
        comment: suffix for the default ``log_dir``.
        flush_secs: flush pending events to disk at least this often.
        max_queue: flush when this many events are pending.
        filename_suffix: appended to the event file name.

    Use as a context manager or call ``close()``; events are flushed on close.

    Example:
        >>> import os, tempfile
        >>> from ember.summary import SummaryWriter
        >>> run = tempfile.mkdtemp()
        >>> with SummaryWriter(run) as writer:
        ...     for step in range(3):
        ...         writer.add_scalar("loss", 1.0 / (step + 1), step)
        >>> [f.startswith("events.out.tfevents") for f in os.listdir(run)]
        [True]
    """

    def __init__(
        self,
        log_dir=None,
        comment="",
        purge_step=None,
        max_queue=10,
        flush_secs=120,
        filename_suffix="",
    ):
        p = _protos()
        if not log_dir:
            stamp = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", f"{stamp}_{socket.gethostname()}{comment}")
        self.log_dir = str(log_dir)
        self.max_queue, self.flush_secs = max_queue, flush_secs
        self.filename_suffix = filename_suffix
        self._writer = EventFileWriter(self.log_dir, max_queue, flush_secs, filename_suffix)
        self._writer.write(
            p.Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString()
        )
        if purge_step is not None:
            self._writer.write(
                p.Event(
                    step=int(purge_step), wall_time=time.time(), session_log=_session_start(p)
                ).SerializeToString()
            )
        self._sub_writers = {}
        self._closed = False

    # ----- plumbing ---------------------------------------------------------------------------
    def get_logdir(self):
        return self.log_dir

    @property
    def file_path(self):
        return self._writer.path

    def _event(self, step, walltime, writer=None, **fields):
        if self._closed:
            raise RuntimeError("SummaryWriter is closed")
        p = _protos()
        ev = p.Event(wall_time=time.time() if walltime is None else float(walltime), **fields)
        if step is not None:
            ev.step = int(step)
        (writer or self._writer).write(ev.SerializeToString())

    def _summary(self, values, step, walltime, writer=None):
        p = _protos()
        self._event(step, walltime, writer, summary=p.Summary(value=values))

    # ----- scalars ----------------------------------------------------------------------------
    def add_scalar(
        self,
        tag,
        scalar_value,
        global_step=None,
        walltime=None,
        new_style=False,
        double_precision=False,
    ):
        """Log one scalar (``float``, 0-d/1-element Tensor or array)."""
        p = _protos()
        v = _scalar(scalar_value, f"add_scalar({tag!r})")
        if new_style:
            tp = (
                p.TensorProto(double_val=[v], dtype=2)
                if double_precision
                else p.TensorProto(float_val=[v], dtype=1)
            )
            md = p.SummaryMetadata(plugin_data=p.SummaryMetadata.PluginData(plugin_name="scalars"))
            val = p.Summary.Value(tag=tag, tensor=tp, metadata=md)
        else:
            val = p.Summary.Value(tag=tag, simple_value=v)
        self._summary([val], global_step, walltime)

    def add_scalars(self, main_tag, tag_scalar_dict, global_step=None, walltime=None):
        """Several scalars on one chart: each sub-tag goes to its own run directory
        ``<log_dir>/<main_tag>_<tag>`` under the tag ``main_tag`` (PyTorch's layout)."""
        p = _protos()
        wt = time.time() if walltime is None else walltime
        for tag, value in tag_scalar_dict.items():
            sub = os.path.join(self.log_dir, main_tag.replace("/", "_") + "_" + tag)
            w = self._sub_writers.get(sub)
            if w is None:
                w = EventFileWriter(sub, self.max_queue, self.flush_secs, self.filename_suffix)
                w.write(
                    p.Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString()
                )
                self._sub_writers[sub] = w
            val = p.Summary.Value(
                tag=main_tag, simple_value=_scalar(value, f"add_scalars({tag!r})")
            )
            self._summary([val], global_step, wt, writer=w)

    # ----- histograms -------------------------------------------------------------------------
    def add_histogram(
        self, tag, values, global_step=None, bins="tensorflow", walltime=None, max_bins=None
    ):
        """Histogram of ``values``; ``bins`` is 'tensorflow' (TF's exponential buckets),
        an int, or anything ``np.histogram`` accepts ('auto', edges, ...)."""
        p = _protos()
        h = _histogram(values, bins, max_bins)
        self._summary([p.Summary.Value(tag=tag, histo=h)], global_step, walltime)

    def add_histogram_raw(
        self,
        tag,
        min,
        max,
        num,
        sum,
        sum_squares,
        bucket_limits,
        bucket_counts,
        global_step=None,
        walltime=None,
    ):
        p = _protos()
        h = p.HistogramProto(
            min=float(min),
            max=float(max),
            num=float(num),
            sum=float(sum),
            sum_squares=float(sum_squares),
            bucket_limit=[float(x) for x in _to_np(bucket_limits).ravel()],
            bucket=[float(x) for x in _to_np(bucket_counts).ravel()],
        )
        self._summary([p.Summary.Value(tag=tag, histo=h)], global_step, walltime)

    # ----- images -----------------------------------------------------------------------------
    def add_image(self, tag, img_tensor, global_step=None, walltime=None, dataformats="CHW"):
        """One image: float values in [0, 1] (scaled by 255, clipped) or uint8; ``dataformats``
        'CHW' (default), 'HWC' or 'HW'; 1, 3 or 4 channels. Stored as PNG (Pillow)."""
        p = _protos()
        img = _to_hwc(_to_np(img_tensor), dataformats)
        self._summary([p.Summary.Value(tag=tag, image=_image_proto(img))], global_step, walltime)

    def add_images(self, tag, img_tensor, global_step=None, walltime=None, dataformats="NCHW"):
        """A batch of images tiled into one grid image."""
        p = _protos()
        arr = _to_np(img_tensor)
        df = dataformats.upper()
        if "N" not in df or arr.ndim != len(df):
            raise ValueError(
                f"add_images: images of shape {tuple(arr.shape)} do not match "
                f"dataformats={dataformats!r}"
            )
        arr = np.moveaxis(arr, df.index("N"), 0)
        rest = df.replace("N", "")
        imgs = np.stack([_to_hwc(a, rest) for a in arr]) if len(arr) else None
        if imgs is None:
            raise ValueError("add_images: empty batch")
        self._summary(
            [p.Summary.Value(tag=tag, image=_image_proto(_grid(_to_uint8(imgs))))],
            global_step,
            walltime,
        )

    # ----- text -------------------------------------------------------------------------------
    def add_text(self, tag, text_string, global_step=None, walltime=None):
        """Markdown text, under the tag ``<tag>/text_summary`` (as PyTorch writes it)."""
        p = _protos()
        from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData

        md = p.SummaryMetadata(
            plugin_data=p.SummaryMetadata.PluginData(
                plugin_name="text", content=TextPluginData(version=0).SerializeToString()
            )
        )
        tp = p.TensorProto(
            dtype=7,
            string_val=[str(text_string).encode("utf-8")],
            tensor_shape=p.TensorShapeProto(dim=[p.TensorShapeProto.Dim(size=1)]),
        )
        self._summary(
            [p.Summary.Value(tag=tag + "/text_summary", metadata=md, tensor=tp)],
            global_step,
            walltime,
        )

    # ----- hparams ----------------------------------------------------------------------------
    def add_hparams(
        self, hparam_dict, metric_dict, hparam_domain_discrete=None, run_name=None, global_step=None
    ):
        """Hyper-parameters and final metrics for the HParams dashboard.

        Like PyTorch, writes a run ``<log_dir>/<run_name>`` (default: the time) holding
        the experiment, session-start and session-end summaries plus one scalar per metric.
        """
        if not isinstance(hparam_dict, dict) or not isinstance(metric_dict, dict):
            raise TypeError("add_hparams: hparam_dict and metric_dict must be dicts")
        exp, ssi, sei = _hparams_summaries(hparam_dict, metric_dict, hparam_domain_discrete or {})
        logdir = os.path.join(self.log_dir, run_name or str(time.time()))
        with SummaryWriter(log_dir=logdir, flush_secs=0) as w:
            for s in (exp, ssi, sei):
                w._event(global_step, None, summary=s)
            for k, v in metric_dict.items():
                w.add_scalar(k, v, global_step)

    # ----- graph ------------------------------------------------------------------------------
    def add_graph(self, model, input_to_model=None, verbose=False, use_strict_trace=True):
        """Record a graph for TensorBoard's graph tab: ``model`` is a module or function
        (traced once on ``input_to_model`` as a dry run: parameters, buffers and ``.grad``
        are left as they were), an ``ember.symbol`` function or an IR ``Graph``. One node per
        equation; parameters named from ``model.named_parameters()``."""
        gd = build_graph_def(model, input_to_model)
        if verbose:
            print(gd)
        self._event(None, None, graph_def=gd.SerializeToString())

    # ----- lifecycle --------------------------------------------------------------------------
    def flush(self):
        self._writer.flush()
        for w in self._sub_writers.values():
            w.flush()

    def close(self):
        if self._closed:
            return
        self._writer.close()
        for w in self._sub_writers.values():
            w.close()
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if not getattr(self, "_closed", True):
            self.close()


def _session_start(p):
    from tensorboard.compat.proto.event_pb2 import SessionLog

    return SessionLog(status=SessionLog.START)


def _hparams_summaries(hparam_dict, metric_dict, domains):
    p = _protos()
    from google.protobuf import struct_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    hps = []
    ssi = plugin_data_pb2.SessionStartInfo()
    for k, v in hparam_dict.items():
        if v is None:
            continue
        if hasattr(v, "shape") or isinstance(v, np.generic):
            v = _scalar(v, f"add_hparams({k!r})")
        dom = None
        if isinstance(v, bool):
            ssi.hparams[k].bool_value = v
            dtype, field = "DATA_TYPE_BOOL", "bool_value"
        elif isinstance(v, (int, float)):
            ssi.hparams[k].number_value = v
            dtype, field = "DATA_TYPE_FLOAT64", "number_value"
        elif isinstance(v, str):
            ssi.hparams[k].string_value = v
            dtype, field = "DATA_TYPE_STRING", "string_value"
        else:
            raise TypeError(
                f"add_hparams: {k!r} must be an int, float, str, bool or a "
                f"one-element tensor, got {type(v).__name__}"
            )
        if k in domains:
            dom = struct_pb2.ListValue(values=[struct_pb2.Value(**{field: d}) for d in domains[k]])
        hps.append(
            api_pb2.HParamInfo(name=k, type=api_pb2.DataType.Value(dtype), domain_discrete=dom)
        )

    def wrap(tag, **content):
        data = plugin_data_pb2.HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, **content)
        md = p.SummaryMetadata(
            plugin_data=p.SummaryMetadata.PluginData(
                plugin_name=metadata.PLUGIN_NAME, content=data.SerializeToString()
            )
        )
        return p.Summary(value=[p.Summary.Value(tag=tag, metadata=md)])

    exp = api_pb2.Experiment(
        hparam_infos=hps,
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=k)) for k in metric_dict],
    )
    sei = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value("STATUS_SUCCESS"))
    return (
        wrap(metadata.EXPERIMENT_TAG, experiment=exp),
        wrap(metadata.SESSION_START_INFO_TAG, session_start_info=ssi),
        wrap(metadata.SESSION_END_INFO_TAG, session_end_info=sei),
    )


# ------------------------------------------------------------------------------------------
# graph from the compiler's IR
# ------------------------------------------------------------------------------------------
def _shape_attr(p, shapes):
    def dim(d):
        if isinstance(d, (int, np.integer)):
            return p.TensorShapeProto.Dim(size=int(d))
        return p.TensorShapeProto.Dim(size=-1, name=str(d))  # a symbolic size

    lst = p.AttrValue.ListValue(shape=[p.TensorShapeProto(dim=[dim(d) for d in s]) for s in shapes])
    return p.AttrValue(list=lst)


def _graph_of(model, input_to_model):
    """The IR graph to draw: a Graph as it is, an ``ember.symbol`` function's graph, or the
    trace (a dry run) of calling ``model`` on the example inputs."""
    from .. import no_grad
    from ..compiler import Graph, trace_graph
    from ..compiler._optimized import OptimizedModule
    from ..compiler.api import CompiledFunction

    if isinstance(model, Graph):
        return model
    g = getattr(model, "graph", None)
    if isinstance(g, Graph):
        return g
    if input_to_model is None:
        inputs = ()
    elif isinstance(input_to_model, (list, tuple)):
        inputs = tuple(input_to_model)
    else:
        inputs = (input_to_model,)
    if isinstance(model, OptimizedModule):  # the compiled forward, symbolic batch and all
        with no_grad():
            return model.__dict__["_compiled"].graph(*inputs)
    if isinstance(model, CompiledFunction):  # the graph it runs (a training step's backward too)
        return model.graph(*inputs)
    with no_grad():  # the forward graph, as PyTorch's add_graph draws it (no backward ops)
        return trace_graph(model, *inputs)


def build_graph_def(model, input_to_model=None):
    """The GraphDef of ``model`` (see ``SummaryWriter.add_graph``): one node per equation of
    its IR graph, inputs, parameters (named from ``named_parameters``/``named_buffers``) and
    outputs; symbolic sizes are unknown (-1) dims that carry their name."""
    p = _protos()
    from ..compiler._optimized import OptimizedModule
    from ..compiler.api import CompiledFunction

    graph = _graph_of(model, input_to_model)
    compiled = isinstance(model, CompiledFunction)
    if isinstance(model, OptimizedModule):
        model = model._orig_mod  # its own names (no ``_orig_mod.``)
    # equations are drawn in the scope of the module whose state they read (TensorBoard
    # groups nodes by name prefix) when the names are module paths
    scoped = compiled or hasattr(model, "named_modules")
    by_id = {}
    for attr in ("named_parameters", "named_buffers"):
        if hasattr(model, attr) and not compiled:
            for pname, t in getattr(model, attr)():
                by_id.setdefault(id(t), pname.replace(".", "/"))
    gd = p.GraphDef(versions=p.VersionDef(producer=22))
    src = {}
    meta = getattr(graph, "meta", None) or {}
    in_names = meta.get("input_names") if isinstance(meta, dict) else None
    for i, v in enumerate(graph.inputs):
        nm = f"input/{in_names[i]}" if in_names and i < len(in_names) else f"input/input.{i}"
        gd.node.add(name=nm, op="IO Node", attr={"_output_shapes": _shape_attr(p, [v.shape])})
        src[id(v)] = nm
    for i, (v, t) in enumerate(zip(graph.captured, graph.captured_tensors)):
        nm = by_id.get(id(t))
        named = nm is not None
        if nm is None:  # state of a graph: shared variables have names, traced constants not
            cn = graph.captured_names[i]
            named = not (cn.startswith("c") and cn[1:].isdigit())
            nm = cn.replace(".", "/") if named else f"constant/{cn}"
        op = "Parameter" if getattr(t, "requires_grad", False) or named else "Leaf"
        gd.node.add(name=nm, op=op, attr={"_output_shapes": _shape_attr(p, [v.shape])})
        src[id(v)] = nm
    state = {src[id(v)] for v in graph.captured}
    counts = {}
    for e in graph.eqns:
        op = e.prim.name
        k = counts.get(op, 0)
        counts[op] = k + 1
        nm = f"{op}_{k}"
        ins = [src[id(v)] for v in e.inputs if id(v) in src]
        if scoped:
            scopes = {i.rpartition("/")[0] for i in ins if i in state}
            scopes.discard("constant")
            if len(scopes) == 1 and "" not in scopes:
                nm = f"{scopes.pop()}/{nm}"
        attr = {"_output_shapes": _shape_attr(p, [v.shape for v in e.outputs])}
        if e.params:
            attr["attr"] = p.AttrValue(s=repr(dict(e.params)).encode())
        gd.node.add(name=nm, op=op, input=ins, attr=attr)
        for j, v in enumerate(e.outputs):
            src[id(v)] = nm if j == 0 else f"{nm}:{j}"
    for i, v in enumerate(graph.outputs):
        if id(v) not in src:
            continue  # a constant output
        gd.node.add(
            name=f"output/output.{i}",
            op="IO Node",
            input=[src[id(v)]],
            attr={"_output_shapes": _shape_attr(p, [v.shape])},
        )
    return gd
