"""Hugging Face checkpoint folders and attention-projection layouts.

A folder written by ``save_pretrained`` holds ``config.json`` and the weights as
``model.safetensors`` (or shards listed in ``model.safetensors.index.json``), or, from older
versions, ``pytorch_model.bin`` (read by the restricted unpickler, never executing code).
Checkpoints store the query/key/value projections either fused (one ``(3d, d)`` matrix) or
split (three ``(d, d)`` ones); :func:`fuse_qkv` and :func:`split_qkv` convert between them.
"""

from __future__ import annotations

import json
import os

import numpy as np

import ember

__all__ = ["fuse_qkv", "read_hf_folder", "split_qkv", "write_hf_folder"]


def fuse_qkv(state_dict: dict, split_names: tuple, fused: str, what: str) -> dict:
    """Replace ``<prefix>{q}.weight/.bias``, ``{k}``, ``{v}`` (``split_names``, nn.Linear
    layout) by ``<prefix>{fused}.weight/.bias`` stacked along the output dimension; a
    projection stored without a bias gets a zero one.

    Example:
        >>> import ember
        >>> sd = {f"a.{n}.weight": ember.ones(2, 2) for n in ("q", "k", "v")}
        >>> {k: tuple(v.shape) for k, v in fuse_qkv(sd, ("q", "k", "v"), "qkv", "x").items()}
        {'a.qkv.weight': (6, 2), 'a.qkv.bias': (6,)}
    """
    q = split_names[0]
    out = dict(state_dict)
    for key in [k for k in state_dict if k.endswith(f".{q}.weight") or k == f"{q}.weight"]:
        prefix = key[: -len(f"{q}.weight")]
        parts = []
        for n in split_names:
            w = out.pop(f"{prefix}{n}.weight", None)
            if w is None:
                raise ValueError(f"{what}: {key} is there but {prefix}{n}.weight is missing")
            parts.append(w)
        if len({tuple(p.shape) for p in parts}) != 1:
            shapes = [tuple(p.shape) for p in parts]
            raise ValueError(f"{what}: the split projections at {prefix!r} differ: {shapes}")
        biases = [out.pop(f"{prefix}{n}.bias", None) for n in split_names]
        if any(b is None for b in biases) and not all(b is None for b in biases):
            raise ValueError(
                f"{what}: only some of the split projections at {prefix!r} have biases"
            )
        out[f"{prefix}{fused}.weight"] = ember.cat(parts, 0)
        rows = sum(int(p.shape[0]) for p in parts)
        out[f"{prefix}{fused}.bias"] = (
            ember.cat(biases, 0)
            if biases[0] is not None
            else ember.zeros(rows, dtype=parts[0].dtype)
        )
    return out


def split_qkv(state_dict: dict, fused_names: tuple, split_names: tuple, what: str) -> dict:
    """Replace ``<prefix>{fused}.weight/.bias`` (any of ``fused_names``) by three equal
    slices along the output dimension named ``split_names``.

    Example:
        >>> import ember
        >>> sd = {"a.qkv.weight": ember.ones(6, 2), "a.qkv.bias": ember.zeros(6)}
        >>> sorted(split_qkv(sd, ("qkv",), ("q", "k", "v"), "x"))
        ['a.k.bias', 'a.k.weight', 'a.q.bias', 'a.q.weight', 'a.v.bias', 'a.v.weight']
    """
    out = dict(state_dict)
    for key in list(state_dict):
        for fused in fused_names:
            for kind in ("weight", "bias"):
                suffix = f"{fused}.{kind}"
                if not (key.endswith("." + suffix) or key == suffix):
                    continue
                prefix = key[: -len(suffix)]
                v = out.pop(key)
                if v.shape[0] % 3:
                    raise ValueError(
                        f"{what}: fused projection {key} has {v.shape[0]} rows, not a multiple of 3"
                    )
                n = v.shape[0] // 3
                for i, name in enumerate(split_names):
                    out[f"{prefix}{name}.{kind}"] = v[i * n : (i + 1) * n].contiguous()
    return out


def read_hf_folder(path: str | os.PathLike, what: str) -> tuple[dict, dict]:
    """``(config, state_dict)`` of a ``save_pretrained`` folder (no network: local files).

    Example:
        >>> import json, os, tempfile, ember
        >>> d = tempfile.mkdtemp()
        >>> _ = open(os.path.join(d, "config.json"), "w").write(json.dumps({"n_layer": 1}))
        >>> ember.save({"wte.weight": ember.zeros(3, 2)}, os.path.join(d, "model.safetensors"))
        >>> cfg, sd = read_hf_folder(d, "demo")
        >>> cfg, list(sd)
        ({'n_layer': 1}, ['wte.weight'])
    """
    from .weights import load_torch_checkpoint

    d = os.fspath(path)
    if not os.path.isdir(d):
        raise FileNotFoundError(f"{what}: {d!r} is not a folder (expected a save_pretrained one)")
    cfg_path = os.path.join(d, "config.json")
    if not os.path.isfile(cfg_path):
        raise FileNotFoundError(f"{what}: no config.json in {d!r}")
    with open(cfg_path, encoding="utf-8") as f:
        config = json.load(f)
    single = os.path.join(d, "model.safetensors")
    index = os.path.join(d, "model.safetensors.index.json")
    legacy = os.path.join(d, "pytorch_model.bin")
    if os.path.isfile(single):
        return config, dict(ember.load(single))
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            shards = sorted(set(json.load(f).get("weight_map", {}).values()))
        if not shards:
            raise ValueError(f"{what}: {index} lists no weight files")
        sd: dict = {}
        for shard in shards:
            p = os.path.join(d, shard)
            if not os.path.isfile(p):
                raise FileNotFoundError(f"{what}: shard {shard!r} listed in {index} is missing")
            sd.update(ember.load(p))
        return config, sd
    if os.path.isfile(legacy):
        return config, dict(load_torch_checkpoint(legacy))
    raise FileNotFoundError(
        f"{what}: no model.safetensors, model.safetensors.index.json or pytorch_model.bin in {d!r}"
    )


def write_hf_folder(path: str | os.PathLike, config: dict, state_dict: dict) -> None:
    """Write ``config.json`` and ``model.safetensors`` (what ``save_pretrained`` writes).

    Example:
        >>> import os, tempfile, ember
        >>> d = tempfile.mkdtemp()
        >>> write_hf_folder(d, {"n_layer": 1}, {"w": ember.zeros(2)})
        >>> sorted(os.listdir(d))
        ['config.json', 'model.safetensors']
    """
    d = os.fspath(path)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    try:
        from safetensors.numpy import save_file
    except ImportError:
        raise ImportError(
            "save_pretrained needs the safetensors package: pip install 'ember[io]'"
        ) from None
    arrays = {k: np.ascontiguousarray(v.detach().numpy()) for k, v in state_dict.items()}
    # "pt": the format tag transformers requires of a checkpoint it loads
    save_file(arrays, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
