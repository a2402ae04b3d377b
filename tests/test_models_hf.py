"""Hugging Face checkpoints: ``save_pretrained`` folders (safetensors, shards, legacy
``pytorch_model.bin``) load into Ember's GPT-2 and BERT with outputs equal to
``transformers``' (the oracle), Ember's ``save_pretrained`` loads back into ``transformers``,
and fused and split query/key/value layouts convert both ways."""

import json

import numpy as np
import pytest
import torch

import ember
import ember.models as M
from tests import _zoo_torch_ref as R
from tests.test_models import TINY_BERT, TINY_GPT, _close, _to_torch

tf = pytest.importorskip("transformers", reason="Hugging Face transformers is not installed")
pytest.importorskip("safetensors", reason="the [io] extra (safetensors) is not installed")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")


def _hf_gpt2():
    torch.manual_seed(0)
    cfg = tf.GPT2Config(**TINY_GPT, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    return tf.GPT2LMHeadModel(cfg).eval()


def _hf_bert(cls=None):
    torch.manual_seed(0)
    return (cls or tf.BertModel)(tf.BertConfig(**TINY_BERT)).eval()


def _ids(vocab, shape=(2, 9), seed=0):
    return np.random.default_rng(seed).integers(1, vocab, shape)


def _gpt2_logits(em, hf, ids):
    with torch.no_grad():
        ref = hf(torch.from_numpy(ids)).logits.numpy()
    with ember.no_grad():
        return em(ember.tensor(ids)).numpy(), ref


def test_gpt2_save_pretrained_folder(tmp_path):
    hf = _hf_gpt2()
    hf.save_pretrained(tmp_path)  # safetensors, the tied head stored once
    em = M.GPT2.from_pretrained(tmp_path)
    assert em.config.n_layer == 2 and em.lm_head.weight is em.transformer.wte.weight
    _close(*_gpt2_logits(em, hf, _ids(61)))
    # the same file through load_pretrained (SHA-256 checked) into a model built by hand
    p = tmp_path / "model.safetensors"
    fresh = M.gpt2(**TINY_GPT).eval()
    res = M.load_pretrained(fresh, p, sha256=M.weights.sha256_file(p))
    assert not res.missing_keys and not res.unexpected_keys
    _close(*_gpt2_logits(fresh, hf, _ids(61, seed=1)))


def test_bert_task_model_folder_and_legacy_bin(tmp_path):
    hf = _hf_bert(tf.BertForMaskedLM)  # "bert." prefix, tied MLM head, no pooler
    hf.save_pretrained(tmp_path / "st")
    em = M.BertModel.from_pretrained(tmp_path / "st")
    assert em.pooler is None
    ids = _ids(53)
    with torch.no_grad():
        ref = hf.bert(input_ids=torch.from_numpy(ids)).last_hidden_state.numpy()
    with ember.no_grad():
        _close(em(ember.tensor(ids)).last_hidden_state.numpy(), ref)
    # an older folder: pytorch_model.bin, read without unpickling code
    legacy = tmp_path / "bin"
    legacy.mkdir()
    (legacy / "config.json").write_text((tmp_path / "st" / "config.json").read_text())
    torch.save(hf.state_dict(), legacy / "pytorch_model.bin")
    em2 = M.BertModel.from_pretrained(legacy)
    for k, v in em.state_dict().items():
        np.testing.assert_array_equal(em2.state_dict()[k].numpy(), v.numpy())


def test_sharded_folder(tmp_path):
    hf = _hf_bert()
    sd = {k: v.numpy() for k, v in hf.state_dict().items()}
    from safetensors.numpy import save_file

    names = sorted(sd)
    half = len(names) // 2
    weight_map = {}
    for i, part in enumerate((names[:half], names[half:])):
        fname = f"model-0000{i + 1}-of-00002.safetensors"
        save_file({k: sd[k] for k in part}, str(tmp_path / fname), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, fname))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    hf.config.to_json_file(str(tmp_path / "config.json"))
    em = M.BertModel.from_pretrained(tmp_path)
    ids = _ids(53)
    with torch.no_grad():
        ref = hf(input_ids=torch.from_numpy(ids))
    with ember.no_grad():
        out = em(ember.tensor(ids))
    _close(out.last_hidden_state.numpy(), ref.last_hidden_state.numpy())
    _close(out.pooler_output.numpy(), ref.pooler_output.numpy())
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="shard 'model-00002-of-00002.safetensors'"):
        M.BertModel.from_pretrained(tmp_path)


def test_ember_save_pretrained_loads_in_transformers(tmp_path):
    ember.manual_seed(0)
    em = M.gpt2(**TINY_GPT).eval()
    em.save_pretrained(tmp_path / "g")
    hf = tf.GPT2LMHeadModel.from_pretrained(tmp_path / "g").eval()
    _close(*_gpt2_logits(em, hf, _ids(61)))
    b = M.bert(**TINY_BERT).eval()
    b.save_pretrained(tmp_path / "b")
    hb = tf.BertModel.from_pretrained(tmp_path / "b").eval()
    ids = _ids(53)
    with torch.no_grad():
        ref = hb(input_ids=torch.from_numpy(ids)).pooler_output.numpy()
    with ember.no_grad():
        _close(b(ember.tensor(ids)).pooler_output.numpy(), ref)


def test_gpt2_split_qkv_checkpoint(tmp_path):
    """Split q/k/v projections (Conv1D layout, as HF's fused one cut in three; and nn.Linear
    layout, as Ember's own) fuse into c_attn."""
    hf = _hf_gpt2()
    sd = {k: ember.tensor(v.numpy()) for k, v in hf.state_dict().items()}
    d = TINY_GPT["n_embd"]
    split_conv1d, split_linear = {}, {}
    for k, v in sd.items():
        if k.endswith("attn.c_attn.weight") or k.endswith("attn.c_attn.bias"):
            base, kind = k.rsplit(".c_attn.", 1)
            for i, n in enumerate(("q_proj", "k_proj", "v_proj")):
                part = v[..., i * d : (i + 1) * d].contiguous()
                split_conv1d[f"{base}.{n}.{kind}"] = part
                split_linear[f"{base}.{n}.{kind}"] = (
                    part.t().contiguous() if part.ndim == 2 else part
                )
        else:
            split_conv1d[k] = v
    ids = _ids(61)
    em = M.gpt2(**TINY_GPT).eval()
    em.load_state_dict(M.gpt2_state_dict_from_hf(split_conv1d), strict=True)
    _close(*_gpt2_logits(em, hf, ids))
    # an Ember-layout dict with split projections (no bias: GPT-Neo style gets zero biases)
    native = {
        k: v for k, v in em.state_dict().items() if not k.endswith(("c_attn.weight", "c_attn.bias"))
    }
    for k, v in split_linear.items():
        if k.endswith("weight"):
            native[k] = v
    out = M.gpt2_state_dict_from_hf(native)
    assert float(out["transformer.h.0.attn.c_attn.bias"].abs().sum()) == 0.0
    np.testing.assert_array_equal(
        out["transformer.h.1.attn.c_attn.weight"].numpy(),
        em.state_dict()["transformer.h.1.attn.c_attn.weight"].numpy(),
    )
    # an Ember state dict passes through unchanged
    same = M.gpt2_state_dict_from_hf(em.state_dict())
    for k, v in em.state_dict().items():
        np.testing.assert_array_equal(same[k].numpy(), v.numpy())
    broken = dict(split_conv1d)
    del broken["transformer.h.0.attn.v_proj.weight"]
    with pytest.raises(ValueError, match=r"h\.0\.attn\.v_proj\.weight is missing"):
        M.gpt2_state_dict_from_hf(broken)


def test_bert_fused_qkv_checkpoint():
    """A fused query/key/value projection (``attention.self.qkv`` / ``Wqkv``) splits."""
    ember.manual_seed(0)
    em = M.bert(**TINY_BERT).eval()
    tm = R.TBert(53, 32, 2, 4, 48, npos=20)
    _to_torch(em, tm).eval()
    for fused_name in ("qkv", "Wqkv"):
        sd = dict(em.state_dict())
        for i in range(TINY_BERT["num_hidden_layers"]):
            p = f"encoder.layer.{i}.attention.self."
            for kind in ("weight", "bias"):
                parts = [sd.pop(f"{p}{n}.{kind}") for n in ("query", "key", "value")]
                sd[f"{p}{fused_name}.{kind}"] = ember.cat(parts, 0)
        fresh = M.bert(**TINY_BERT).eval()
        fresh.load_state_dict(M.bert_state_dict_from_hf(sd), strict=True)
        ids = _ids(53)
        with ember.no_grad():
            out = fresh(ember.tensor(ids)).last_hidden_state.numpy()
        with torch.no_grad():
            ref, _ = tm(torch.from_numpy(ids))
        _close(out, ref.numpy())
    bad = {"encoder.layer.0.attention.self.qkv.weight": ember.zeros(8, 4)}
    with pytest.raises(ValueError, match="not a multiple of 3"):
        M.bert_state_dict_from_hf(bad)


def test_torch_state_dict_saved_as_safetensors(tmp_path):
    """A PyTorch state dict written by safetensors.torch loads by name into a zoo model."""
    from safetensors.torch import save_file

    tm = R.TResNet(R.TBasic, [2] * 4, 6).eval()
    p = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in tm.state_dict().items()}, str(p))
    em = M.resnet18(num_classes=6).eval()
    M.load_pretrained(em, p, sha256=M.weights.sha256_file(p))
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with ember.no_grad():
        out = em(ember.tensor(x)).numpy()
    with torch.no_grad():
        ref = tm(torch.from_numpy(x)).numpy()
    _close(out, ref)


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        M.GPT2.from_pretrained(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        M.GPT2.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        M.BertModel.from_pretrained(tmp_path)
