"""DistilBERT, RoBERTa and XLM-RoBERTa checkpoints: our encoder vs transformers on real texts (both paddings,
padded and packed paths), their tokenizers, TextEncoder and the CLI end to end, export back to each family's
own layout, and the errors for what does not fit."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from encoderlab import BertConfig, BertModel, CheckpointError, ConfigError, TextEncoder, load_hf_bert, save_hf_bert
from encoderlab.interop.hf_bert import load_hf_bert_mlm, save_hf_bert_mlm
from encoderlab.interop.hf_config import EncoderlabOnlyWarning
from encoderlab.models.bert import BertForMaskedLM
from encoderlab.tokenization import TextTokenizer

from .tiny_families import (
    MAX_POSITIONS,
    bbc_sentences,
    build_distilbert,
    build_roberta,
    padded_batches,
    worst_difference,
)
from .varied_texts import varied_texts

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

FAMILIES = ["distilbert", "roberta", "xlm-roberta"]
HF_CLASSES = {"distilbert": "DistilBertModel", "roberta": "RobertaModel", "xlm-roberta": "XLMRobertaModel"}


@pytest.fixture(scope="module")
def sentences():
    return bbc_sentences()


@pytest.fixture(scope="module")
def texts(sentences):
    # special tokens typed in the text become their ids: a "<pad>" there is a real token at padding's position
    literal = ["literal <pad> and <s> tokens inside </s> the text", "[PAD] [CLS] typed [SEP] in BERT's"]
    return varied_texts() + literal + sentences[:80]


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, tmp_path_factory, sentences, minilm_dir):
    """(model_type, checkpoint directory, the transformers encoder it was saved from)."""
    directory = tmp_path_factory.mktemp(request.param)
    if request.param == "distilbert":
        hf = build_distilbert(directory, minilm_dir)
    else:
        hf = build_roberta(directory, sentences, model_type=request.param)
    return request.param, directory, hf


# ---------------------------------------------------------------------------------------- parity
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("unpad", [True, False])
def test_last_hidden_states_match_transformers(family, texts, side, unpad):
    model_type, directory, hf = family
    ours = load_hf_bert(directory)
    ours.cfg.unpad = unpad  # packed (padding-free) or padded path
    worst = worst_difference(ours, hf, padded_batches(directory, texts, side))
    assert worst <= 1e-5, f"{model_type}, {side}-padded, unpad={unpad}: max-abs difference {worst:.2e}"


def test_reference_attention_path_matches_transformers(family, texts):
    model_type, directory, hf = family
    ours = load_hf_bert(directory)
    for block in ours.blocks:
        block.attn.fused = False
    assert worst_difference(ours, hf, padded_batches(directory, texts[:48], "left")) <= 1e-5


def test_the_config_says_what_each_family_is(family):
    model_type, directory, _ = family
    cfg = load_hf_bert(directory).cfg
    assert cfg.hf_model_type == model_type and cfg.max_positions == MAX_POSITIONS
    if model_type == "distilbert":
        assert (cfg.n_segments, cfg.pooler, cfg.norm_eps, cfg.position_offset) == (0, False, 1e-12, 0)
    else:  # max_position_embeddings 66 = 64 positions after pad_token_id + 1 = 2 unused rows
        assert (cfg.n_segments, cfg.pooler, cfg.norm_eps) == (1, True, 1e-5)
        assert (cfg.pad_token_id, cfg.position_numbering, cfg.position_offset) == (1, "non_padding", 2)


def test_positions_equal_the_references_for_both_paddings(family, texts):
    """RoBERTa: create_position_ids_from_input_ids (non-padding rank from pad_token_id + 1); DistilBERT: the
    column, whatever the padding."""
    model_type, directory, hf = family
    ours = load_hf_bert(directory)
    for side in ("right", "left"):
        ids, mask = next(padded_batches(directory, texts[30:60], side, size=30))
        assert not mask.all()
        if model_type == "distilbert":
            expected = hf.embeddings.position_ids[:, :ids.size(1)]
        else:
            expected = hf.embeddings.create_position_ids_from_input_ids(ids, hf.config.pad_token_id)
        assert torch.equal(ours.embeddings.position_ids(ids).expand_as(ids), expected.expand_as(ids))


# ---------------------------------------------------------------------------------------- tokenizer + TextEncoder
def test_our_tokenizer_gives_transformers_ids_and_pad_id(family, texts):
    _, directory, _ = family
    reference = transformers.AutoTokenizer.from_pretrained(str(directory))
    ours = TextTokenizer.from_dir(directory)
    assert ours.pad_id == reference.pad_token_id
    expected = reference(texts, truncation=True, max_length=MAX_POSITIONS)["input_ids"]
    assert ours.encode_ids(texts, MAX_POSITIONS) == expected


def _sentence_transformers_or_manual(directory, hf, texts):
    """Mean-pooled, normalised reference vectors: sentence-transformers when installed, else by hand."""
    try:
        import sentence_transformers
    except ImportError:
        sentence_transformers = None
    if sentence_transformers is not None:
        model = sentence_transformers.SentenceTransformer(str(directory), device="cpu")
        return model.encode(texts, batch_size=16, convert_to_numpy=True)
    rows = []
    with torch.inference_mode():
        for ids, mask in padded_batches(directory, texts, "right"):
            hidden = hf(input_ids=ids, attention_mask=mask).last_hidden_state
            mean = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            rows.append(torch.nn.functional.normalize(mean, dim=1).numpy())
    return np.concatenate(rows)


def test_text_encoder_embeds_like_the_reference(family, texts):
    model_type, directory, hf = family
    encoder = TextEncoder.from_pretrained(directory)
    assert (encoder.pooling, encoder.normalize, encoder.max_seq_length) == ("mean", True, MAX_POSITIONS)
    ours = encoder.encode(texts, batch_size=16)
    expected = _sentence_transformers_or_manual(directory, hf, [t.strip() for t in texts])
    assert ours.shape == expected.shape == (len(texts), 32)
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_encode_command_on_the_directory(family, texts, tmp_path):
    from encoderlab.cli import main

    _, directory, _ = family
    lines = [t for t in texts if t.strip() and "\n" not in t][:20]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["encode", "--model", str(directory), "--input", str(tmp_path / "in.txt"),
              "--output", str(tmp_path / "out.npy")])
    assert exit_info.value.code == 0
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), TextEncoder.from_pretrained(directory).encode(lines),
                               atol=1e-6)


# ---------------------------------------------------------------------------------------- export back
def test_saved_back_in_its_own_layout_loads_in_transformers(family, texts, tmp_path):
    model_type, directory, hf = family
    ours = load_hf_bert(directory)
    save_hf_bert(ours, tmp_path / "out")
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["model_type"] == model_type and config["architectures"] == [HF_CLASSES[model_type]]
    assert set(load_file(tmp_path / "out" / "model.safetensors")) == set(load_file(directory / "model.safetensors"))
    reloaded = transformers.AutoModel.from_pretrained(str(tmp_path / "out")).eval()
    assert type(reloaded).__name__ == HF_CLASSES[model_type]
    for side in ("right", "left"):
        assert worst_difference(reloaded, hf, padded_batches(directory, texts[:48], side)) <= 1e-5
    again = load_hf_bert(tmp_path / "out")
    assert again.cfg == ours.cfg
    for name, tensor in ours.state_dict().items():
        assert torch.equal(again.state_dict()[name], tensor), name


def test_text_encoder_save_pretrained_round_trips(family, texts, tmp_path):
    model_type, directory, hf = family
    encoder = TextEncoder.from_pretrained(directory)
    out = encoder.save_pretrained(tmp_path / "saved")
    assert json.loads((out / "config.json").read_text())["model_type"] == model_type
    np.testing.assert_allclose(TextEncoder.from_pretrained(out).encode(texts[:30]), encoder.encode(texts[:30]),
                               atol=1e-6)
    reloaded = transformers.AutoModel.from_pretrained(str(out)).eval()
    assert worst_difference(reloaded, hf, padded_batches(directory, texts[:32], "left")) <= 1e-5


# ---------------------------------------------------------------------------------------- task-model checkpoints
@pytest.mark.parametrize("model_type", FAMILIES)
def test_masked_lm_checkpoints_load_their_encoder(model_type, tmp_path, sentences, minilm_dir):
    """distilbert-base-uncased and roberta-base ship as ...ForMaskedLM: the encoder sits under "distilbert." /
    "roberta." next to the LM head, which we skip. The DistilBERT one has sinusoidal positions and ReLU."""
    if model_type == "distilbert":
        hf = build_distilbert(tmp_path, minilm_dir, task_model=True, sinusoidal_pos_embds=True, activation="relu")
        encoder, prefix = hf.distilbert, "distilbert."
    else:
        hf = build_roberta(tmp_path, sentences, model_type=model_type, task_model=True)
        encoder, prefix = hf.roberta, "roberta."
    assert any(k.startswith(prefix) for k in load_file(tmp_path / "model.safetensors"))
    ours = load_hf_bert(tmp_path)
    assert not ours.cfg.pooler
    assert worst_difference(ours, encoder, padded_batches(tmp_path, sentences[:32], "left")) <= 1e-5
    with pytest.raises(CheckpointError, match="masked-LM heads import from BERT and RoFormer checkpoints only"):
        load_hf_bert_mlm(tmp_path)


# ---------------------------------------------------------------------------------------- errors
def _edit_config(directory, **changes):
    config = json.loads((directory / "config.json").read_text())
    config.update(changes)
    (directory / "config.json").write_text(json.dumps(config))


@pytest.fixture
def tiny_distilbert(tmp_path):
    model = BertModel(BertConfig(vocab_size=50, d_model=16, n_layers=2, n_heads=2, d_ff=32, max_positions=16,
                                      n_segments=0, pooler=False, hf_model_type="distilbert"))
    return save_hf_bert(model, tmp_path / "distilbert")


@pytest.fixture
def tiny_roberta(tmp_path):
    cfg = BertConfig(vocab_size=50, d_model=16, n_layers=2, n_heads=2, d_ff=32, max_positions=16, n_segments=1,
                     pad_token_id=1, position_numbering="non_padding", position_offset=2, hf_model_type="roberta")
    return save_hf_bert(BertModel(cfg), tmp_path / "roberta")


def test_unsupported_model_type_names_the_supported_ones(tiny_roberta):
    _edit_config(tiny_roberta, model_type="deberta-v2")
    with pytest.raises(CheckpointError, match=r"model_type='deberta-v2' is not a BERT checkpoint.*"
                                              r"\['bert', 'distilbert', 'roberta', 'roformer', 'xlm-roberta'\]"):
        load_hf_bert(tiny_roberta)


def test_a_missing_distilbert_tensor_is_named(tiny_distilbert):
    state = load_file(tiny_distilbert / "model.safetensors")
    del state["transformer.layer.1.ffn.lin2.bias"]
    save_file(state, tiny_distilbert / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"missing 1 DistilBERT tensors, e.g. \['transformer.layer.1.ffn.lin2"):
        load_hf_bert(tiny_distilbert)


def test_a_misshaped_distilbert_tensor_is_named(tiny_distilbert):
    _edit_config(tiny_distilbert, hidden_dim=48)
    with pytest.raises(CheckpointError, match=r"transformer.layer.0.ffn.lin1.weight has shape \(32, 16\) but "
                                              r"config.json implies \(48, 16\)"):
        load_hf_bert(tiny_distilbert)


def test_a_misshaped_roberta_position_table_is_named(tiny_roberta):
    _edit_config(tiny_roberta, max_position_embeddings=40)  # 38 positions after the 2 unused rows, table has 18
    with pytest.raises(CheckpointError, match=r"position_embeddings.weight has shape \(18, 16\) but config.json "
                                              r"implies \(40, 16\)"):
        load_hf_bert(tiny_roberta)


def test_unexpected_tensors_are_named(tiny_roberta):
    state = load_file(tiny_roberta / "model.safetensors")
    state["encoder.layer.2.output.dense.weight"] = torch.zeros(16, 32)
    save_file(state, tiny_roberta / "model.safetensors")
    with pytest.raises(CheckpointError, match="1 tensors that a RoBERTa encoder with 2 layers does not have"):
        load_hf_bert(tiny_roberta)


def test_roberta_position_table_must_outgrow_the_offset(tiny_roberta):
    _edit_config(tiny_roberta, max_position_embeddings=2)
    with pytest.raises(CheckpointError, match="max_position_embeddings=2 leaves no position"):
        load_hf_bert(tiny_roberta)


def test_decoders_are_refused(tiny_roberta):
    _edit_config(tiny_roberta, is_decoder=True)
    with pytest.raises(CheckpointError, match="bidirectional encoders only"):
        load_hf_bert(tiny_roberta)


def test_what_a_family_cannot_hold_is_refused_before_writing(tmp_path):
    cfg = BertConfig(vocab_size=50, d_model=16, n_layers=1, n_heads=2, d_ff=32, n_segments=0,
                     hf_model_type="distilbert")
    with pytest.raises(ConfigError, match="has a pooler, which DistilBERT does not"):
        save_hf_bert(BertModel(cfg), tmp_path / "pooled")
    assert not (tmp_path / "pooled").exists()
    cfg.pooler, cfg.norm_eps = False, 1e-5
    with pytest.raises(ConfigError, match="LayerNorm epsilon is fixed at 1e-12"):
        save_hf_bert(BertModel(cfg), tmp_path / "eps")
    roberta = BertConfig(vocab_size=50, d_model=16, n_layers=1, n_heads=2, d_ff=32, pad_token_id=1,
                         position_numbering="non_padding", position_offset=2, hf_model_type="roberta")
    with pytest.raises(ConfigError, match="masked-LM head is saved in BERT's layout only"):
        save_hf_bert_mlm(BertForMaskedLM(roberta), tmp_path / "mlm")


@pytest.mark.parametrize("model_type", FAMILIES)
def test_pruned_family_models_round_trip(model_type, tmp_path):
    """Per-layer heads and feed-forward widths travel as pruned_heads / encoderlab_intermediate_sizes in every
    family's config.json, as for BERT."""
    torch.manual_seed(0)
    family = (dict(n_segments=0, pooler=False) if model_type == "distilbert" else
              dict(n_segments=1, pad_token_id=1, position_numbering="non_padding", position_offset=2))
    cfg = BertConfig(vocab_size=50, d_model=16, n_layers=2, n_heads=4, d_ff=32, max_positions=12,
                     layer_heads=[4, 1], layer_d_ff=[9, 32], hf_model_type=model_type, **family)
    model = BertModel(cfg).eval()
    save_hf_bert(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == model_type and config["pruned_heads"] == {"1": [1, 2, 3]}
    loaded = load_hf_bert(tmp_path)
    ids = torch.randint(2, 50, (2, 9))
    assert loaded.cfg == model.cfg and torch.equal(loaded(ids), model(ids))


# ---------------------------------------------------------------------------------------- BERT-layout variants
def test_bert_without_token_types_saves_as_encoderlab_bert(tmp_path):
    """transformers' BERT always adds a token-type embedding, so a BERT-layout model without one is ours."""
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=50, d_model=16, n_layers=1, n_heads=2, d_ff=32, n_segments=0)).eval()
    with pytest.warns(EncoderlabOnlyWarning, match=r"no token-type embeddings \(n_segments=0\)"):
        save_hf_bert(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "encoderlab-bert" and config["type_vocab_size"] == 0
    loaded = load_hf_bert(tmp_path)
    ids = torch.randint(2, 50, (2, 6))
    assert loaded.cfg == model.cfg and torch.equal(loaded(ids), model(ids))


def test_bert_with_roberta_numbering_round_trips_as_encoderlab_bert(tmp_path):
    """Non-padding numbering under hf_model_type 'bert' (e.g. set in a pretraining config): transformers' BERT
    numbers by column, so it is saved as encoderlab-bert with the two fields, and reloads exactly."""
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, d_model=16, n_layers=1, n_heads=2, d_ff=32, max_positions=12, pad_token_id=1,
                     position_numbering="non_padding", position_offset=2, norm_position="pre")
    model = BertModel(cfg).eval()
    with pytest.warns(EncoderlabOnlyWarning, match="pre-LN .*RoBERTa's position numbering"):
        save_hf_bert(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "encoderlab-bert" and config["max_position_embeddings"] == 14
    assert (config["encoderlab_position_numbering"], config["encoderlab_position_offset"]) == ("non_padding", 2)
    loaded = load_hf_bert(tmp_path)
    ids = torch.randint(2, 50, (2, 9))
    ids[1, :3] = 1
    mask = (ids != 1).long()
    assert loaded.cfg == model.cfg and torch.equal(loaded(ids, mask), model(ids, mask))


def test_a_roberta_directory_without_tokenizer_config_embeds_the_same(family, texts, tmp_path):
    """Without tokenizer_config.json the pad token is not named; padding then uses another id, which must not
    move a real token's position (right padding comes after every real token)."""
    model_type, directory, _ = family
    if model_type == "distilbert":
        return
    import shutil

    bare = shutil.copytree(directory, tmp_path / "bare")
    (bare / "tokenizer_config.json").unlink()
    np.testing.assert_allclose(TextEncoder.from_pretrained(bare).encode(texts[:40]),
                               TextEncoder.from_pretrained(directory).encode(texts[:40]), atol=1e-6)


def test_onnx_export_keeps_each_familys_positions(family, texts, tmp_path):
    """The ONNX graph runs the embeddings' own position numbering (RoBERTa's offset and non-padding rank):
    its hidden states equal transformers' on a right-padded batch."""
    ort = pytest.importorskip("onnxruntime")
    from encoderlab.compression.export_onnx import export_onnx

    _, directory, hf = family
    encoder = TextEncoder.from_pretrained(directory)
    export_onnx(encoder, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    ids, mask = next(padded_batches(directory, texts[:24], "right", size=24))
    hidden, _ = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    with torch.inference_mode():
        expected = hf(input_ids=ids, attention_mask=mask).last_hidden_state
    assert (torch.from_numpy(hidden) - expected)[mask.bool()].abs().max().item() <= 1e-4
