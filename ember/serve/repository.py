"""Models, their numbered versions, the version policy and the directory watcher.

A model's base path holds one saved-model directory per version, named by a positive
integer (TF Serving's layout): ``BASE/1/saved_model.json``, ``BASE/2/...``. A base path that
is itself a saved-model directory is served as version 1. The policy picks the versions to
serve (``latest:N``, ``specific:1,3`` or ``all``); a version is only dropped once the ones
replacing it have loaded, so a broken new version is refused (and logged) while the old one
keeps serving. Requests hold the version they started with, so a switch drops none of them.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

from .batching import Batcher, BatchingConfig
from .errors import NotFound

__all__ = ["LoadedVersion", "ModelConfig", "Repository", "ServedModel", "parse_policy"]

log = logging.getLogger("ember.serve")

MANIFEST = "saved_model.json"

# One model execution at a time per process: Ember's dispatch state (grad mode) is process
# global, and its kernels already spread one execution over the cores; concurrency comes
# from batching and from --workers processes.
_EXEC_LOCK = threading.Lock()


def _locked(run: Callable[[dict], dict]) -> Callable[[dict], dict]:
    def locked_run(feeds: dict) -> dict:
        with _EXEC_LOCK:
            return run(feeds)

    return locked_run


def parse_policy(policy: str) -> tuple[str, Any]:
    """``"latest:2"`` -> ``("latest", 2)``; ``"specific:1,3"`` -> ``("specific", {1, 3})``.

    Example:
        >>> parse_policy("specific:1,3")
        ('specific', {1, 3})
    """
    kind, _, arg = str(policy).partition(":")
    try:
        if kind == "latest":
            n = int(arg or 1)
            if n >= 1:
                return "latest", n
        elif kind == "specific":
            vs = {int(v) for v in arg.split(",") if v.strip()}
            if vs and min(vs) >= 1:
                return "specific", vs
        elif kind == "all" and not arg:
            return "all", None
    except ValueError:
        pass
    raise ValueError(
        f"version policy {policy!r} not understood; expected 'latest:N', 'specific:V1,V2' or 'all'"
    )


@dataclass
class ModelConfig:
    """One served model: ``name`` (in URLs), ``base_path`` (numbered version directories or
    one saved model), version ``policy`` and optional ``batching``.

    Example:
        >>> ModelConfig("mlp", "models/mlp", policy="specific:1,3").policy
        'specific:1,3'
    """

    name: str
    base_path: str
    policy: str = "latest:1"
    batching: BatchingConfig | None = None

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or ":" in self.name:
            raise ValueError(f"model name {self.name!r} must be non-empty without '/' or ':'")
        parse_policy(self.policy)


def warm_up(model: Any, batch_sizes: list[int]) -> None:
    """Run every signature once on zeros at each batch size before the version serves.

    Kernels compiled on first use are compiled here rather than on a live request, and a
    version that loads but cannot run is refused like one that does not load. Signatures
    with dynamic dimensions other than the batch axis (or string inputs) are skipped."""
    import numpy as np

    for sig in model.signatures.values():
        specs = sig.inputs
        if any(d is None for s in specs for d in s.shape[1:]) or any(
            s.dtype in ("bytes", "string", "object") for s in specs
        ):
            continue
        batched = all(len(s.shape) >= 1 and s.shape[0] is None for s in specs)
        for b in batch_sizes if batched else [None]:
            feeds = {
                s.name: np.zeros(
                    tuple(b if d is None else d for d in s.shape) if b else tuple(s.shape),
                    dtype=s.dtype,
                )
                for s in specs
            }
            with _EXEC_LOCK:  # never beside a live request (see _EXEC_LOCK)
                sig.run(feeds)


def _batchable(sig: Any) -> bool:
    return all(len(s.shape) >= 1 and s.shape[0] is None for s in sig.inputs)


class LoadedVersion:
    """One loaded version of a model, with a batcher per batchable signature."""

    def __init__(
        self,
        name: str,
        version: int,
        model: Any,
        batching: BatchingConfig | None,
        on_batch: Callable[[str, int], None] | None,
    ) -> None:
        self.name, self.version, self.model = name, version, model
        self.batchers: dict[str, Batcher] = {}
        if batching is not None:
            for sname, sig in model.signatures.items():
                if _batchable(sig):
                    cb = (lambda n: on_batch(name, n)) if on_batch else None
                    self.batchers[sname] = Batcher(_locked(sig.run), batching, cb)

    def signature(self, name: str | None) -> Any:
        sigs = self.model.signatures
        key = name or "serving_default"
        if key not in sigs:
            if not name and len(sigs) == 1:
                return next(iter(sigs.values()))
            raise NotFound(
                f"model '{self.name}' version {self.version} has no signature {key!r}; "
                f"it has {sorted(sigs)}"
            )
        return sigs[key]

    def signature_name(self, name: str | None) -> str:
        sigs = self.model.signatures
        key = name or "serving_default"
        return key if key in sigs or len(sigs) != 1 else next(iter(sigs))

    def submit(self, sig_name: str | None, feeds: dict, executor: Executor) -> Future:
        """Run a signature on ``feeds`` through its batcher (or the executor)."""
        sig = self.signature(sig_name)
        b = self.batchers.get(self.signature_name(sig_name))
        if b is not None:
            try:
                return b.submit(feeds)
            except RuntimeError:
                pass  # this version is being retired; still answer the request
        return executor.submit(_locked(sig.run), feeds)

    def close(self) -> None:
        for b in self.batchers.values():
            b.stop()


def _fingerprint(path: str) -> tuple:
    out = []
    for root, _, files in os.walk(path):
        for f in files:
            try:
                st = os.stat(os.path.join(root, f))
            except OSError:
                continue
            out.append((os.path.relpath(os.path.join(root, f), path), st.st_size, st.st_mtime_ns))
    return tuple(sorted(out))


class ServedModel:
    """The loaded versions of one model; :meth:`refresh` brings them in line with the disk."""

    def __init__(
        self,
        config: ModelConfig,
        loader: Callable[[str], Any],
        on_batch: Callable[[str, int], None] | None = None,
    ) -> None:
        self.config = config
        self._loader, self._on_batch = loader, on_batch
        self.versions: dict[int, LoadedVersion] = {}  # replaced whole, never mutated
        self.failed: dict[int, tuple[tuple, str]] = {}  # version -> (fingerprint, error)
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.config.name

    def on_disk(self) -> dict[int, str]:
        base = self.config.base_path
        if os.path.isfile(os.path.join(base, MANIFEST)):
            return {1: base}
        found = {}
        try:
            entries = os.listdir(base)
        except OSError:
            return {}
        for e in entries:
            p = os.path.join(base, e)
            if e.isdigit() and int(e) > 0 and os.path.isdir(p):
                found[int(e)] = p
        return found

    def _wanted(self, available: list[int]) -> list[int]:
        kind, arg = parse_policy(self.config.policy)
        available = sorted(available, reverse=True)
        if kind == "latest":
            return available[:arg]
        if kind == "specific":
            return [v for v in available if v in arg]
        return available

    def refresh(self) -> None:
        """Load the versions the policy wants, then retire the ones no longer needed."""
        with self._lock:
            disk = self.on_disk()
            wanted = self._wanted(list(disk))
            current = dict(self.versions)
            for v in wanted:
                if v in current:
                    continue
                fp = _fingerprint(disk[v])
                if v in self.failed and self.failed[v][0] == fp:
                    continue  # refused before and unchanged since
                try:
                    model = self._loader(disk[v])
                    if not getattr(model, "signatures", None):
                        raise ValueError("the saved model has no signatures")
                    b = self.config.batching
                    warm_up(
                        model, sorted({1, min(8, b.max_batch_size), b.max_batch_size}) if b else [1]
                    )
                    current[v] = LoadedVersion(
                        self.name, v, model, self.config.batching, self._on_batch
                    )
                    self.failed.pop(v, None)
                    log.info("model %s: loaded version %d from %s", self.name, v, disk[v])
                except Exception as e:  # noqa: BLE001 - a broken version is refused, logged
                    self.failed[v] = (fp, f"{type(e).__name__}: {e}")
                    verdict = "keeps serving" if current else "has no version to serve"
                    log.error(
                        "model %s: version %d at %s refused (%s: %s); the model %s %s",
                        self.name,
                        v,
                        disk[v],
                        type(e).__name__,
                        e,
                        verdict,
                        sorted(current) or "",
                    )
            keep = [v for v in wanted if v in current]
            kind, arg = parse_policy(self.config.policy)
            need = arg if kind == "latest" else 1
            # availability first: hold older versions until enough wanted ones are loaded
            for v in sorted(current, reverse=True):
                if len(keep) >= need:
                    break
                if v not in keep:
                    keep.append(v)
            new = {v: current[v] for v in sorted(keep)}
            retired = [lv for v, lv in current.items() if v not in new]
            self.versions = new
            for v in set(self.failed) - set(disk):
                del self.failed[v]
        for lv in retired:
            log.info("model %s: version %d unloaded", self.name, lv.version)
            lv.close()

    def get(self, version: int | None) -> LoadedVersion:
        """The version asked for (the newest when ``None``), or NotFound."""
        versions = self.versions
        if version is None:
            if not versions:
                raise NotFound(f"model '{self.name}' has no version available")
            return versions[max(versions)]
        if version not in versions:
            raise NotFound(
                f"model '{self.name}' version {version} is not available; "
                f"available versions: {sorted(versions)}"
            )
        return versions[version]

    def close(self) -> None:
        with self._lock:
            old, self.versions = self.versions, {}
        for lv in old.values():
            lv.close()


class Repository:
    """Every served model, and the thread that polls their directories."""

    def __init__(
        self,
        configs: list[ModelConfig],
        loader: Callable[[str], Any] | None = None,
        on_batch: Callable[[str, int], None] | None = None,
    ) -> None:
        names = [c.name for c in configs]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique, got {names}")
        if loader is None:
            from ember.export import load

            loader = load
        self.models = {c.name: ServedModel(c, loader, on_batch) for c in configs}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def get(self, name: str) -> ServedModel:
        if name not in self.models:
            raise NotFound(f"model '{name}' is not served; models: {sorted(self.models)}")
        return self.models[name]

    def refresh(self) -> None:
        for m in self.models.values():
            try:
                m.refresh()
            except Exception:  # the watcher must outlive any one bad directory
                log.exception("model %s: refreshing versions failed", m.name)

    def start(self, poll_s: float = 1.0) -> None:
        """Load every model now, then poll for new versions every ``poll_s`` seconds."""
        self.refresh()
        if poll_s > 0:
            self._thread = threading.Thread(
                target=self._watch, args=(poll_s,), name="ember-serve-watcher", daemon=True
            )
            self._thread.start()

    def _watch(self, poll_s: float) -> None:
        while not self._stop.wait(poll_s):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for m in self.models.values():
            m.close()
