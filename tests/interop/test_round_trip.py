"""Export our encoder in Hugging Face layout and load it back with transformers (and with ourselves)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from encoderlab import BertConfig, BertModel, CheckpointError, TextEncoder, load_hf_bert, save_hf_bert


@torch.inference_mode()
@pytest.mark.slow
def test_minilm_export_loads_in_transformers_with_same_outputs(minilm, hf_minilm, tmp_path):
    transformers = pytest.importorskip("transformers")
    out = minilm.save_pretrained(tmp_path / "exported")
    reloaded = transformers.AutoModel.from_pretrained(str(out)).eval()
    batch = minilm.tokenizer(["round trip", "a longer sentence to compare outputs on"], max_length=64)
    ours = minilm(batch.input_ids, batch.attention_mask)
    theirs = reloaded(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
    real = batch.attention_mask.bool()
    assert (ours - theirs)[real].abs().max().item() <= 1e-5
    reference = hf_minilm(input_ids=batch.input_ids, attention_mask=batch.attention_mask).pooler_output
    torch.testing.assert_close(reloaded(**{"input_ids": batch.input_ids,
                                            "attention_mask": batch.attention_mask}).pooler_output, reference)


@pytest.mark.slow
def test_exported_directory_reloads_as_text_encoder(minilm, tmp_path):
    out = minilm.save_pretrained(tmp_path / "exported")
    again = TextEncoder.from_pretrained(out)
    assert (again.pooling, again.normalize, again.max_seq_length) == ("mean", True, 256)
    texts = ["same vectors after a round trip", "中文也一样"]
    torch.testing.assert_close(torch.from_numpy(again.encode(texts)), torch.from_numpy(minilm.encode(texts)))


@torch.inference_mode()
def test_random_tiny_transformers_bert_imports_exactly(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    hf_cfg = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                                     intermediate_size=48, max_position_embeddings=40, type_vocab_size=3)
    hf = transformers.BertModel(hf_cfg).eval()
    hf.save_pretrained(tmp_path / "tiny")
    ours = load_hf_bert(tmp_path / "tiny")
    assert (ours.cfg.n_layers, ours.cfg.d_ff, ours.cfg.n_segments) == (3, 48, 3)
    ids = torch.randint(0, 99, (2, 17))
    segments = torch.randint(0, 3, (2, 17))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    expected = hf(input_ids=ids, attention_mask=mask, token_type_ids=segments)
    got = ours(ids, mask, segments)
    real = mask.bool()
    assert (got - expected.last_hidden_state)[real].abs().max() <= 1e-5
    torch.testing.assert_close(ours.pool(got), expected.pooler_output, atol=1e-5, rtol=1e-5)


def test_pytorch_model_bin_is_loaded_too(tmp_path):
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=50, d_model=16, n_layers=1, n_heads=2, d_ff=32, max_positions=16))
    save_hf_bert(model, tmp_path)

    state = {f"bert.{k}": v for k, v in load_file(tmp_path / "model.safetensors").items()}
    (tmp_path / "model.safetensors").unlink()
    torch.save(state, tmp_path / "pytorch_model.bin")
    loaded = load_hf_bert(tmp_path)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor)


@pytest.mark.parametrize("variant", [dict(positions="sinusoidal"), dict(norm_position="pre"), dict(ffn_kind="glu"),
                                     dict(positions="rotary", norm_position="pre", ffn_kind="glu")])
def test_architectures_no_family_can_express_round_trip_as_encoderlab_bert(tmp_path, variant):
    """Saved in BERT's layout under model_type "encoderlab-bert" (with a warning): encoderlab reloads the same
    model exactly; transformers refuses it instead of loading a BERT that computes something else. (Rotary
    positions alone are RoFormer's: tests/interop/test_hf_roformer.py.)"""
    from encoderlab.interop.hf_config import EncoderlabOnlyWarning

    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=50, d_model=16, n_layers=2, n_heads=2, d_ff=32, **variant)).eval()
    with pytest.warns(EncoderlabOnlyWarning, match="encoderlab-bert"):
        save_hf_bert(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "encoderlab-bert"
    assert all(config[f"encoderlab_{name}"] == getattr(model.cfg, name) for name in variant)
    weights = set(load_file(tmp_path / "model.safetensors"))
    assert ("embeddings.position_embeddings.weight" in weights) == (model.cfg.positions == "learned")
    loaded = load_hf_bert(tmp_path)
    assert loaded.cfg == model.cfg
    ids = torch.randint(1, 50, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    assert torch.equal(loaded(ids, mask), model(ids, mask))
    with pytest.raises((ValueError, KeyError), match="encoderlab-bert"):
        transformers.AutoModel.from_pretrained(str(tmp_path))


def test_plain_bert_keeps_bert_model_type(tmp_path):
    save_hf_bert(BertModel(BertConfig(vocab_size=50, d_model=16, n_layers=1, n_heads=2, d_ff=32)), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "bert" and not any(k.startswith("encoderlab_") for k in config)


# ---------------------------------------------------------------------------------------- bad checkpoints
def _tiny_checkpoint(path):
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=50, d_model=16, n_layers=2, n_heads=2, d_ff=32, max_positions=16))
    return save_hf_bert(model, path)


def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        TextEncoder.from_pretrained(tmp_path / "nope")


def test_directory_without_weights(tmp_path):
    _tiny_checkpoint(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no weights; expected one of model.safetensors"):
        load_hf_bert(tmp_path)


def test_directory_without_config(tmp_path):
    with pytest.raises(CheckpointError, match="has no config.json"):
        load_hf_bert(tmp_path)


def test_non_bert_config(tmp_path):
    _tiny_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 2}))
    with pytest.raises(CheckpointError, match="model_type='gpt2' is not a BERT checkpoint"):
        load_hf_bert(tmp_path)


def test_shape_mismatch_between_config_and_weights(tmp_path):
    _tiny_checkpoint(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["intermediate_size"] = 64
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"intermediate.dense.weight has shape \(32, 16\).*\(64, 16\)"):
        load_hf_bert(tmp_path)


def test_missing_layer_weights(tmp_path):
    _tiny_checkpoint(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["num_hidden_layers"] = 3
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="missing 16 BERT tensors"):
        load_hf_bert(tmp_path)


def test_truncated_weights_file(tmp_path):
    _tiny_checkpoint(tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="may be truncated"):
        load_hf_bert(tmp_path)


def test_checkpoint_without_tokenizer(tmp_path):
    _tiny_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="has no tokenizer"):
        TextEncoder.from_pretrained(tmp_path)


def test_pruned_model_round_trips_and_transformers_refuses_it_loudly(tmp_path):
    """Per-layer head counts travel as pruned_heads (transformers 4.x prunes on load), per-layer d_ff as
    encoderlab_intermediate_sizes; transformers 5 has no head pruning and must fail, never load silently."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=99, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_positions=16,
                     layer_heads=[2, 4], layer_d_ff=[64, 20])
    model = BertModel(cfg).eval()
    from encoderlab.interop.hf_config import EncoderlabOnlyWarning

    with pytest.warns(EncoderlabOnlyWarning, match="fewer heads in some blocks .* and per-block feed-forward widths"):
        save_hf_bert(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["num_attention_heads"] == 4 and config["pruned_heads"] == {"0": [2, 3]}
    assert config["intermediate_size"] == 64 and config["encoderlab_intermediate_sizes"] == [64, 20]
    loaded = load_hf_bert(tmp_path)
    assert loaded.cfg.layer_heads == [2, 4] and loaded.cfg.layer_d_ff == [64, 20]
    ids = torch.randint(1, 99, (2, 7))
    assert torch.equal(loaded(ids), model(ids))
    if int(transformers.__version__.split(".")[0]) >= 5:
        with pytest.raises(RuntimeError, match="mismatch"):
            transformers.AutoModel.from_pretrained(str(tmp_path))


def test_inconsistent_pruned_heads_are_refused(tmp_path):
    save_hf_bert(BertModel(BertConfig(vocab_size=99, d_model=32, n_layers=2, n_heads=4, d_ff=64)), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "pruned_heads": {"5": [0]}}))
    with pytest.raises(CheckpointError, match="pruned_heads\\['5'\\]=\\[0\\] is outside 2 layers x 4 heads"):
        load_hf_bert(tmp_path)
