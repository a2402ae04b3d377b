"""Import of the ONNX recurrent operators ``LSTM``, ``GRU`` and ``RNN``.

The forms PyTorch writes (one direction or two, default activations, GRU with
``linear_before_reset=1``, no peepholes, clip or sequence lengths) run on ember's fused
sequence kernels; every other form on a written-out step loop, so all of them stay
differentiable. ``layout=1`` (batch-major) is transposed around either.
"""

from __future__ import annotations

from typing import Any

from .._tensor import Tensor
from ._import import IMPORTS, ONNXModule, _where

__all__: list[str] = []

_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
_DEFAULT_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}


def _blocks(w: Tensor, order: list[int], n: int) -> Tensor:
    import ember

    h = w.shape[0] // n
    return ember.cat([w[g * h : (g + 1) * h] for g in order], 0)


def _act(name: str, alpha: float | None, beta: float | None) -> Any:
    import ember.nn.functional as F

    fns = {
        "Sigmoid": lambda x: x.sigmoid(),
        "Tanh": lambda x: x.tanh(),
        "Relu": lambda x: x.relu(),
        "Affine": lambda x: x * (alpha if alpha is not None else 1.0) + (beta or 0.0),
        "LeakyRelu": lambda x: F.leaky_relu(x, alpha if alpha is not None else 0.01),
        "ThresholdedRelu": lambda x: _where(x > (alpha or 1.0), x, x * 0),
        "ScaledTanh": lambda x: (x * (beta or 1.0)).tanh() * (alpha or 1.0),
        "HardSigmoid": lambda x: (x * (alpha or 0.2) + (0.5 if beta is None else beta)).clamp(0, 1),
        "Elu": lambda x: F.elu(x, alpha if alpha is not None else 1.0),
        "Softsign": lambda x: x / (1 + x.abs()),
        "Softplus": lambda x: F.softplus(x),
    }
    if name not in fns:
        raise NotImplementedError(f"recurrent activation {name!r}")
    return fns[name]


def _fast(kind: str, x, W, R, B, h, c, reverse: bool, acts: list[str], lbr: int) -> Any:
    import ember

    from ..ops.recurrence import gru_seq, rnn_seq
    from ..ops.rnn import lstm_seq

    n = _GATES[kind]
    hidden = R.shape[-1]
    if B is None:
        B = ember.zeros(2 * n * hidden, dtype=x.dtype)
    wb, rb = B[: n * hidden], B[n * hidden :]
    if kind == "LSTM":
        order = [0, 2, 3, 1]  # i,o,f,c -> i,f,g,o
        return lstm_seq(
            x, _blocks(W, order, 4), _blocks(wb + rb, order, 4), h, c,
            _blocks(R, order, 4), reverse,
        )  # fmt: skip
    if kind == "GRU":
        order = [1, 0, 2]  # z,r,h -> r,z,n
        hs = gru_seq(
            x, _blocks(W, order, 3), _blocks(wb, order, 3), h,
            _blocks(R, order, 3), _blocks(rb, order, 3), reverse,
        )  # fmt: skip
        return hs, None
    return rnn_seq(x, W, wb + rb, h, R, reverse, acts[0] == "Relu"), None


def _loop(kind, x, W, R, B, h, c, P, lens, reverse, acts, lbr, clip) -> Any:
    """The step recurrence written out with ember ops (ONNX's gate orders: i,o,f,c / z,r,h)."""
    import ember

    n = _GATES[kind]
    hd = R.shape[-1]
    zeros = ember.zeros(n * hd, dtype=x.dtype)
    wb, rb = (B[: n * hd], B[n * hd :]) if B is not None else (zeros, zeros)
    f, g, hact = acts[0], acts[1] if len(acts) > 1 else None, acts[2] if len(acts) > 2 else None
    T = x.shape[0]
    steps = range(T - 1, -1, -1) if reverse else range(T)
    outs: list[Any] = [None] * T
    cl = (lambda v: v.clamp(-clip, clip)) if clip is not None else (lambda v: v)
    for t in steps:
        xw = x[t] @ W.T + wb
        if kind == "LSTM":
            gates = xw + h @ R.T + rb
            i, o, fg, cc = (gates[:, k * hd : (k + 1) * hd] for k in range(4))
            if P is not None:
                i, fg = i + P[:hd] * c, fg + P[2 * hd :] * c
            i, fg, cc = f(cl(i)), f(cl(fg)), g(cl(cc))
            c_new = fg * c + i * cc
            if P is not None:
                o = o + P[hd : 2 * hd] * c_new
            h_new = f(cl(o)) * hact(c_new)
        elif kind == "GRU":
            z = f(cl(xw[:, :hd] + h @ R[:hd].T + rb[:hd]))
            r = f(cl(xw[:, hd : 2 * hd] + h @ R[hd : 2 * hd].T + rb[hd : 2 * hd]))
            if lbr:
                hh = g(cl(xw[:, 2 * hd :] + r * (h @ R[2 * hd :].T + rb[2 * hd :])))
            else:
                hh = g(cl(xw[:, 2 * hd :] + (r * h) @ R[2 * hd :].T + rb[2 * hd :]))
            h_new = (1 - z) * hh + z * h
            c_new = None
        else:
            h_new = f(cl(xw + h @ R.T + rb))
            c_new = None
        if lens is not None:  # past a sequence's end its state stays and its output is 0
            live = (lens > t).to(x.dtype).unsqueeze(1)
            h_new = live * h_new + (1 - live) * h
            if c_new is not None:
                c_new = live * c_new + (1 - live) * c
            outs[t] = h_new * live
        else:
            outs[t] = h_new
        h, c = h_new, c_new
    return ember.stack(outs, 0), h, c


def _rec(kind: str) -> Any:
    def run(m: ONNXModule, x, W, R, B=None, lens=None, h0=None, c0=None, P=None, **a) -> Any:
        import ember

        layout = int(a.get("layout", 0))
        if layout:  # batch-major in and out
            x = x.transpose(0, 1)
            h0 = h0.transpose(0, 1) if h0 is not None else None
            c0 = c0.transpose(0, 1) if c0 is not None else None
        direction = a.get("direction", "forward")
        dirs = [False, True] if direction == "bidirectional" else [direction == "reverse"]
        n_acts = len(_DEFAULT_ACTS[kind])
        names = list(a.get("activations") or _DEFAULT_ACTS[kind] * len(dirs))
        alphas = list(a.get("activation_alpha") or [])
        betas = list(a.get("activation_beta") or [])
        lbr = int(a.get("linear_before_reset", 0))
        clip = a.get("clip")
        if a.get("input_forget", 0):
            raise NotImplementedError("LSTM with input_forget=1")
        hidden = R.shape[-1]
        batch = x.shape[1]
        ys, hs, cs = [], [], []
        for d, reverse in enumerate(dirs):
            acts = names[d * n_acts : (d + 1) * n_acts]
            fast = (
                (acts == _DEFAULT_ACTS[kind] or (kind == "RNN" and acts == ["Relu"]))
                and clip is None
                and P is None
                and lens is None
                and (kind != "GRU" or lbr)
            )
            h = h0[d] if h0 is not None else ember.zeros(batch, hidden, dtype=x.dtype)
            c = c0[d] if c0 is not None else ember.zeros(batch, hidden, dtype=x.dtype)
            b = B[d] if B is not None else None
            if fast:
                y, cseq = _fast(kind, x, W[d], R[d], b, h, c, reverse, acts, lbr)
                last = 0 if reverse else -1
                ys.append(y)
                hs.append(y[last])
                cs.append(cseq[last] if cseq is not None else None)
            else:
                fns = []
                for k, name in enumerate(acts):
                    j = d * n_acts + k
                    al = alphas[j] if j < len(alphas) else None
                    be = betas[j] if j < len(betas) else None
                    fns.append(_act(name, al, be))
                p = P[d] if P is not None else None
                y, hl, cl = _loop(kind, x, W[d], R[d], b, h, c, p, lens, reverse, fns, lbr, clip)
                ys.append(y)
                hs.append(hl)
                cs.append(cl)
        y = ember.stack(ys, 1)  # (T, dirs, B, H)
        yh = ember.stack(hs, 0)
        outs = [y, yh]
        if kind == "LSTM":
            outs.append(ember.stack(cs, 0))
        if layout:
            outs = [y.permute(2, 0, 1, 3), *[o.transpose(0, 1) for o in outs[1:]]]
        return outs

    return run


for _k in _GATES:
    IMPORTS[_k] = _rec(_k)
