"""A local registry of weight files: a JSON index mapping a name to a file and its SHA-256.

The index is plain JSON (``{"version": 1, "weights": {name: {"path", "sha256", ...}}}``);
relative paths are read relative to the index file's folder, so a folder of weights and its
index can be moved together. Nothing is downloaded: a missing file is an error that says
where it was looked for.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any

__all__ = [
    "WeightsRegistry",
    "default_registry",
    "load_pretrained",
    "read_weights",
    "sha256_file",
]

INDEX_ENV = "EMBER_WEIGHTS_INDEX"
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, as 64 lowercase hex digits.

    Example:
        >>> import os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "x.bin")
        >>> _ = open(p, "wb").write(b"abc")
        >>> sha256_file(p)[:16]
        'ba7816bf8f01cfea'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_sha(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _SHA_RE.match(value.lower()):
        raise ValueError(f"{what}: sha256 must be 64 hex digits, got {value!r}")
    return value.lower()


class WeightsRegistry:
    """Weight files by name, recorded in a JSON index at ``index_path``.

    Example:
        >>> import os, tempfile, ember
        >>> d = tempfile.mkdtemp()
        >>> ember.save(ember.nn.Linear(2, 1).state_dict(), os.path.join(d, "lin.safetensors"))
        >>> reg = WeightsRegistry(os.path.join(d, "index.json"))
        >>> reg.register("lin-demo", os.path.join(d, "lin.safetensors"))
        >>> reg.names(), os.path.basename(reg.path("lin-demo"))
        (['lin-demo'], 'lin.safetensors')
    """

    def __init__(self, index_path: str | os.PathLike) -> None:
        self.index_path = os.path.abspath(os.fspath(index_path))

    def _read(self) -> dict:
        if not os.path.exists(self.index_path):
            return {"version": 1, "weights": {}}
        try:
            with open(self.index_path, encoding="utf-8") as f:
                data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{self.index_path}: weights index is not valid JSON ({e})") from None
        if not isinstance(data, dict) or not isinstance(data.get("weights"), dict):
            # a damaged index file (wrong content), not a wrong argument type: ValueError
            raise ValueError(f"{self.index_path}: weights index has no 'weights' mapping")  # noqa: TRY004
        return data

    def _write(self, data: dict) -> None:
        os.makedirs(os.path.dirname(self.index_path), exist_ok=True)
        tmp = self.index_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, self.index_path)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._read()["weights"])

    def entry(self, name: str) -> dict:
        """The index record of ``name`` with its path made absolute."""
        weights = self._read()["weights"]
        if name not in weights:
            known = ", ".join(sorted(weights)) or "none"
            raise KeyError(f"no weights named {name!r} in {self.index_path}; registered: {known}")
        rec = dict(weights[name])
        if not isinstance(rec.get("path"), str):
            raise ValueError(f"{self.index_path}: entry {name!r} has no 'path'")  # noqa: TRY004
        rec["path"] = os.path.join(os.path.dirname(self.index_path), rec["path"])
        return rec

    def register(
        self,
        name: str,
        path: str | os.PathLike,
        sha256: str | None = None,
        model: str | None = None,
        description: str = "",
    ) -> None:
        """Record ``path`` under ``name`` with its SHA-256 (computed when not given; a given one
        must match the file). Paths inside the index's folder are stored relative to it."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"register: name must be a non-empty str, got {name!r}")
        p = os.path.abspath(os.fspath(path))
        if not os.path.isfile(p):
            raise FileNotFoundError(f"register({name!r}): no such file {p!r}")
        actual = sha256_file(p)
        if sha256 is not None and _check_sha(sha256, f"register({name!r})") != actual:
            raise ValueError(f"register({name!r}): {p} has SHA-256 {actual}, not {sha256}")
        root = os.path.dirname(self.index_path)
        rel = os.path.relpath(p, root)
        stored = p if rel.startswith("..") else rel
        data = self._read()
        data["weights"][name] = {"path": stored, "sha256": actual}
        if model:
            data["weights"][name]["model"] = model
        if description:
            data["weights"][name]["description"] = description
        self._write(data)

    def path(self, name: str) -> str:
        """The verified file of ``name``: it must exist and match the recorded SHA-256."""
        rec = self.entry(name)
        return verify_file(rec["path"], rec.get("sha256"), f"weights {name!r}")


def default_registry() -> WeightsRegistry:
    """The registry at ``$EMBER_WEIGHTS_INDEX``, else ``~/.ember/weights/index.json``.

    Example:
        >>> default_registry().index_path.endswith(".json")
        True
    """
    path = os.environ.get(INDEX_ENV) or os.path.join(
        os.path.expanduser("~"), ".ember", "weights", "index.json"
    )
    return WeightsRegistry(path)


def verify_file(path: str, sha256: str | None, what: str) -> str:
    """``path`` if it exists and (when ``sha256`` is given) its bytes hash to it."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{what}: file {path!r} is missing (weights are never downloaded; put the file "
            "there or register another path)"
        )
    if sha256 is not None:
        want = _check_sha(sha256, what)
        got = sha256_file(path)
        if got != want:
            raise ValueError(
                f"{what}: SHA-256 mismatch for {path!r}: expected {want}, file has {got} "
                "(the file is damaged or not the one registered)"
            )
    return path


def read_weights(path: str | os.PathLike) -> Any:
    """The tensors of a weight file, by its format: ``.pt``/``.pth``/``.bin`` (PyTorch zip,
    restricted reader), ``.safetensors``/``.ember`` (:func:`ember.load`), ``.onnx``
    (initializers). Keras ``.h5`` files load into models with :func:`load_pretrained`.

    Example:
        >>> import os, tempfile, torch
        >>> p = os.path.join(tempfile.mkdtemp(), "w.pth")
        >>> torch.save({"w": torch.ones(2)}, p)
        >>> read_weights(p)["w"].tolist()
        [1.0, 1.0]
    """
    import zipfile

    import ember

    from ._formats import load_onnx_initializers
    from ._torch_pickle import load_torch_checkpoint

    name = os.fspath(path)
    if not os.path.isfile(name):
        raise FileNotFoundError(f"read_weights: no such file {name!r}")
    low = name.lower()
    if low.endswith(".onnx"):
        return load_onnx_initializers(name)
    if low.endswith((".safetensors", ".ember")):
        return ember.load(name)
    if low.endswith((".pt", ".pth", ".bin", ".ckpt", ".tar")) or zipfile.is_zipfile(name):
        return load_torch_checkpoint(name)
    if low.endswith(".h5"):
        raise ValueError(f"{name}: a Keras .h5 file loads into a model: use load_pretrained")
    raise ValueError(
        f"{name}: unknown weight format (expected .pt/.pth, .safetensors, .onnx or .weights.h5)"
    )


def _is_tensor(v: Any) -> bool:
    import ember

    return isinstance(v, ember.Tensor)


def _state_dict_of(obj: Any, key: str | None, source: str) -> dict:
    # a bare state dict, or a training checkpoint holding one under a usual key
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
            raise KeyError(f"{source}: no entry {key!r} in the checkpoint (it has {keys})")
        obj = obj[key]
    if not isinstance(obj, dict):
        raise TypeError(f"{source}: holds a {type(obj).__name__}, not a state dict")
    if obj and all(_is_tensor(v) for v in obj.values()):
        sd = dict(obj)
    else:
        for k in ("state_dict", "model_state_dict", "model", "module", "net"):
            if isinstance(obj.get(k), dict) and all(_is_tensor(v) for v in obj[k].values()):
                sd = dict(obj[k])
                break
        else:
            raise ValueError(
                f"{source}: no state dict found (top-level keys {sorted(map(str, obj))}); pass "
                "key= to name the entry that holds it"
            )
    # a model saved from DataParallel / DistributedDataParallel prefixes every name
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def load_pretrained(
    model,
    name_or_path: str | os.PathLike,
    sha256: str | None = None,
    strict: bool = True,
    key: str | None = None,
    registry: WeightsRegistry | None = None,
):
    """Load weights into ``model`` from a registered name or a file path, checking the
    SHA-256 (the registered one, and/or ``sha256=``). ``ember.nn`` modules take PyTorch
    checkpoints, safetensors and ONNX initializers by state-dict name; ``ember.keras`` models
    take Keras ``.weights.h5`` files. Returns ``load_state_dict``'s result (``None`` for Keras).

    Example:
        >>> import os, tempfile, torch, ember
        >>> p = os.path.join(tempfile.mkdtemp(), "lin.pt")
        >>> torch.save(torch.nn.Linear(3, 2).state_dict(), p)
        >>> load_pretrained(ember.nn.Linear(3, 2), p)
        <All keys matched successfully>
    """
    reg = registry or default_registry()
    target = os.fspath(name_or_path)
    if sha256 is not None:
        sha256 = _check_sha(sha256, "load_pretrained")
    if target in reg.names():
        rec = reg.entry(target)
        recorded = rec.get("sha256")
        if sha256 is not None and recorded is not None and recorded.lower() != sha256:
            raise ValueError(
                f"load_pretrained: sha256={sha256} differs from the registered {recorded} "
                f"for {target!r}"
            )
        path = verify_file(rec["path"], sha256 or recorded, f"weights {target!r}")
    elif os.path.isfile(target):
        path = verify_file(target, sha256, "load_pretrained")
    else:
        raise FileNotFoundError(
            f"load_pretrained: {target!r} is neither a registered name (in "
            f"{reg.index_path}: {', '.join(reg.names()) or 'none'}) nor an existing file"
        )
    if path.lower().endswith(".h5"):
        from ._formats import load_keras_weights

        load_keras_weights(model, path)
        return None
    sd = _state_dict_of(read_weights(path), key, path)
    # models that know other frameworks' layouts (GPT2, BertModel: Hugging Face names) adapt them
    adapt = getattr(model, "_import_state_dict", None)
    if adapt is not None:
        sd = adapt(sd)
    return model.load_state_dict(sd, strict=strict)
