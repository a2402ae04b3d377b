"""``Tensor.is_inference`` / ``ember.is_inference`` against PyTorch 2.13: tensors made inside
``inference_mode`` (by ops, constructors, views and multi-output ops) are inference tensors;
those made outside it, under ``no_grad`` or under ``inference_mode(False)`` are not."""

from __future__ import annotations

import threading

import pytest
import torch

import ember


def _flags(lib):
    with lib.inference_mode():
        a = lib.ones(2, 3)
        made = {
            "constructor": a,
            "tensor": lib.tensor([1.0, 2.0]),
            "op": a * 2,
            "view": a.view(3, 2),
            "values": a.max(1)[0],
            "indices": a.max(1)[1],
            "cat": lib.cat([a, a]),
        }
    made["after"] = a + 1
    with lib.no_grad():
        made["no_grad"] = lib.ones(1) * 2
    with lib.inference_mode(False):
        made["disabled"] = lib.ones(1) * 2
    made["plain"] = lib.ones(1, requires_grad=True) * 2
    return {k: v.is_inference() for k, v in made.items()} | {
        "function": lib.is_inference(made["op"]),
        "function_plain": lib.is_inference(made["plain"]),
    }


def test_matches_torch():
    assert _flags(ember) == _flags(torch)


def test_per_thread():
    seen = {}

    def worker():
        seen["other"] = ember.ones(1).is_inference()

    with ember.inference_mode():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        seen["here"] = ember.ones(1).is_inference()
    assert seen == {"other": False, "here": True}


def test_not_a_tensor():
    with pytest.raises(TypeError, match="is_inference"):
        ember.is_inference([1.0])
