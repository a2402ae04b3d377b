"""Model-zoo speed: ResNet-18 and MiniLM-L6 inference and training steps, Ember vs PyTorch eager.

Run: python bench/bench_zoo.py [--cases resnet18_infer,...] [--repeats R] [--budget S]
     [--threads N] [--keep-blas-env]

Ember runs ``ember.models.resnet18`` and ``ember.models.minilm_l6`` (all-MiniLM-L6-v2's BERT
shape, random weights); PyTorch runs the same architectures with the same parameter names:
the torchvision-layout ResNet of the zoo tests (``tests/_zoo_torch_ref.py``) and a BERT
written here on ``F.scaled_dot_product_attention`` (what Hugging Face's default attention
calls). Small batches keep a run to a couple of minutes on a laptop-class CPU. Each
(case, framework, repeat) is a fresh process (``bench/_protocol.py``): build, warm-up,
then the fastest of several timed chunks; the ratio is Ember / PyTorch throughput, the
median over the repeats with the spread.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import _protocol as P
import numpy as np

# name -> model and input sizes
CASES = {
    "resnet18_infer": {"model": "resnet18", "train": False, "batch": 4, "size": 64},
    "resnet18_train": {"model": "resnet18", "train": True, "batch": 4, "size": 64},
    "minilm_infer": {"model": "minilm", "train": False, "batch": 8, "seq": 32},
    "minilm_train": {"model": "minilm", "train": True, "batch": 8, "seq": 32},
}
MINILM = {"vocab": 30522, "d": 384, "layers": 6, "heads": 12, "inner": 1536, "npos": 512}


def _torch_bert(torch):
    nn, F = torch.nn, torch.nn.functional

    class Layer(nn.Module):
        def __init__(self, d, heads, inner):
            super().__init__()
            self.h = heads
            self.attention = nn.Module()
            self.attention.self = nn.Module()
            s = self.attention.self
            s.query, s.key, s.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
            self.attention.output = nn.Module()
            self.attention.output.dense = nn.Linear(d, d)
            self.attention.output.LayerNorm = nn.LayerNorm(d, eps=1e-12)
            self.intermediate = nn.Module()
            self.intermediate.dense = nn.Linear(d, inner)
            self.output = nn.Module()
            self.output.dense = nn.Linear(inner, d)
            self.output.LayerNorm = nn.LayerNorm(d, eps=1e-12)

        def forward(self, x, mask):
            b, n, d = x.shape
            s = self.attention.self
            q, k, v = (
                f(x).view(b, n, self.h, d // self.h).transpose(1, 2)
                for f in (s.query, s.key, s.value)
            )
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            y = y.transpose(1, 2).reshape(b, n, d)
            o = self.attention.output
            x = o.LayerNorm(o.dense(y) + x)
            h = F.gelu(self.intermediate.dense(x))
            return self.output.LayerNorm(self.output.dense(h) + x)

    class Bert(nn.Module):
        def __init__(self, vocab, d, layers, heads, inner, npos):
            super().__init__()
            self.embeddings = nn.Module()
            e = self.embeddings
            e.word_embeddings = nn.Embedding(vocab, d)
            e.position_embeddings = nn.Embedding(npos, d)
            e.token_type_embeddings = nn.Embedding(2, d)
            e.LayerNorm = nn.LayerNorm(d, eps=1e-12)
            self.encoder = nn.Module()
            self.encoder.layer = nn.ModuleList([Layer(d, heads, inner) for _ in range(layers)])

        def forward(self, ids, attention_mask):
            e = self.embeddings
            pos = torch.arange(ids.shape[1])
            x = e.word_embeddings(ids) + e.position_embeddings(pos)
            x = e.LayerNorm(x + e.token_type_embeddings(torch.zeros_like(ids)))
            mask = (attention_mask != 0)[:, None, None, :]
            for layer in self.encoder.layer:
                x = layer(x, mask)
            return x

    return Bert(**MINILM)


def _build(lib: Any, case: dict) -> tuple:
    """``(model, inputs, labels, head)`` for ``case`` in ``lib``."""
    rng = np.random.default_rng(0)
    is_torch = lib.__name__ == "torch"
    if case["model"] == "resnet18":
        if is_torch:
            from tests import _zoo_torch_ref as R

            model = R.TResNet(R.TBasic, [2, 2, 2, 2], 1000)
        else:
            model = lib.models.resnet18()
        x = rng.standard_normal((case["batch"], 3, case["size"], case["size"]))
        inputs = (lib.tensor(x.astype(np.float32)),)
        return model, inputs, lib.tensor(rng.integers(0, 1000, case["batch"])), None
    model = _torch_bert(lib) if is_torch else lib.models.minilm_l6(add_pooling_layer=False)
    b, n = case["batch"], case["seq"]
    ids = rng.integers(1000, MINILM["vocab"], (b, n))
    mask = np.ones((b, n), np.int64)
    mask[: b // 2, n * 3 // 4 :] = 0  # padded sentences, as a batch of real text has
    head = lib.nn.Linear(MINILM["d"], 2)
    return model, (lib.tensor(ids), lib.tensor(mask)), lib.tensor(rng.integers(0, 2, b)), head


def _hidden(lib, model, inputs):
    out = model(*inputs)
    return out if lib.__name__ == "torch" else out.last_hidden_state


def measure_zoo(lib: Any, case: str, budget: float = 2.0) -> dict:
    """Seconds per call and items/s of ``case`` in ``lib`` (in a child process).

    Example:
        >>> import ember
        >>> r = measure_zoo(ember, "minilm_infer", budget=0.01)
        >>> r["items_per_s"] > 0
        True
    """
    spec = CASES[case]
    model, inputs, labels, head = _build(lib, spec)
    F = lib.nn.functional
    if not spec["train"]:
        model.eval()

        def step():
            with lib.no_grad():
                if spec["model"] == "resnet18":
                    return model(*inputs)
                h = _hidden(lib, model, inputs)
                m = inputs[1].unsqueeze(-1).float()
                return F.normalize((h * m).sum(1) / m.sum(1), dim=1)  # sentence embedding

    else:
        model.train()
        params = list(model.parameters()) + (list(head.parameters()) if head else [])
        if spec["model"] == "resnet18":
            opt = lib.optim.SGD(params, lr=0.01, momentum=0.9)
        else:
            opt = lib.optim.AdamW(params, lr=2e-5)

        def step():
            opt.zero_grad()
            if spec["model"] == "resnet18":
                logits = model(*inputs)
            else:
                m = inputs[1].unsqueeze(-1).float()
                logits = head((_hidden(lib, model, inputs) * m).sum(1) / m.sum(1))
            loss = F.cross_entropy(logits, labels)
            loss.backward()
            opt.step()
            return loss

    sec = P.time_per_call(step, budget=budget, chunks=3)
    n = spec["batch"]
    return {"ms": sec * 1e3, "items_per_s": n / sec, "finite": bool(math.isfinite(sec))}


def bench(names: list[str], repeats: int, threads: int, budget: float, keep: bool) -> list:
    """One table row per case, printed as it finishes."""
    print("| case | batch | Ember ms | PyTorch ms | Ember/PyTorch | repeats [min-max] |")
    print("|---|---|---|---|---|---|")
    rows = []
    for name in names:
        runs = P.compare(
            "bench_zoo", "measure_zoo", {"case": name, "budget": budget}, repeats, threads, keep
        )
        e = [r["ember"]["ms"] for r in runs]
        t = [r["torch"]["ms"] for r in runs]
        med, lo, hi = P.ratio_summary([b / a for a, b in zip(e, t)])
        spec = CASES[name]
        shape = (
            f"{spec['batch']}x3x{spec['size']}x{spec['size']}"
            if "size" in spec
            else f"{spec['batch']}x{spec['seq']} tokens"
        )
        row = {"case": name, "ember_ms": float(np.median(e)), "torch_ms": float(np.median(t))}
        row.update(ratio=med, lo=lo, hi=hi, batch=shape)
        rows.append(row)
        print(
            f"| `{name}` | {shape} | {row['ember_ms']:.1f} | {row['torch_ms']:.1f} | "
            f"{med:.2f} | {repeats} [{lo:.2f}-{hi:.2f}] |",
            flush=True,
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {list(CASES)}")
    p.add_argument("--budget", type=float, default=2.0, help="timed seconds per run")
    P.add_protocol_args(p, repeats=3)
    a = p.parse_args(argv)
    names = [n for n in a.cases.split(",") if n]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        p.error(f"unknown case(s) {unknown}; expected some of {list(CASES)}")
    head = P.header(
        "bench_zoo: model-zoo inference and training", a.threads, a.keep_blas_env, P.THROUGHPUT
    )
    print(head + "\n")
    rows = bench(names, a.repeats, a.threads, a.budget, a.keep_blas_env)
    print(P.load_line())
    P.write_json(a.json, head, rows)


if __name__ == "__main__":
    main()
