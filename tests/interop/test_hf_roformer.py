"""RoFormer: the Hugging Face family of rotary post-LN encoders, which is what `encoderlab pretrain` trains by
default. A tiny random RoFormer built by `transformers` loads into our encoder with the same outputs (padded
both sides, padded and packed paths, MLM logits too); our rotary encoders save as RoFormer and
`transformers.AutoModel` computes them; the older encoderlab-bert layout still loads; what no family can
express says so at save time."""

import json
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file

from encoderlab import BertConfig, BertModel, CheckpointError, TextEncoder, load_hf_bert, save_hf_bert
from encoderlab.interop import hf_bert
from encoderlab.interop.hf_bert import (
    interleave_rotary_rows,
    key_map,
    load_hf_bert_mlm,
    roformer_sinusoids,
    save_hf_bert_mlm,
)
from encoderlab.interop.hf_config import EncoderlabOnlyWarning, config_to_hf
from encoderlab.models.bert import BertForMaskedLM

from .tiny_families import MAX_POSITIONS, bbc_sentences, build_roformer, padded_batches, worst_difference
from .varied_texts import varied_texts

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()


@pytest.fixture(scope="module")
def sentences():
    return bbc_sentences()


@pytest.fixture(scope="module")
def texts(sentences):
    return varied_texts() + sentences[:60]


@pytest.fixture(scope="module")
def roformer(tmp_path_factory, sentences):
    """(checkpoint directory, the transformers RoFormerModel it was saved from)."""
    directory = tmp_path_factory.mktemp("roformer")
    return directory, build_roformer(directory, sentences)


def tiny_rotary(seed=0, **changes) -> BertModel:
    """Our rotary post-LN encoder, weights moved off their initial values."""
    torch.manual_seed(seed)
    cfg = dict(vocab_size=120, d_model=32, n_layers=2, n_heads=4, d_ff=48, max_positions=40, positions="rotary",
               pooler=False, norm_eps=1e-6)
    model = BertModel(BertConfig(**{**cfg, **changes})).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape) * 0.05)
    return model


def random_batch(vocab_size=120, seed=1):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (3, 33), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 20:] = 0
    mask[2, :12] = 0  # left padding
    return ids, mask


# ---------------------------------------------------------------------------------------- transformers -> ours
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("unpad", [True, False])
def test_a_transformers_roformer_loads_with_the_same_outputs(roformer, texts, side, unpad):
    directory, hf = roformer
    ours = load_hf_bert(directory)
    assert (ours.cfg.positions, ours.cfg.norm_position, ours.cfg.pooler) == ("rotary", "post", False)
    ours.cfg.unpad = unpad
    worst = worst_difference(ours, hf, padded_batches(directory, texts, side))
    assert worst <= 1e-5, f"{side}-padded, unpad={unpad}: max-abs difference {worst:.2e}"


def test_the_reference_attention_path_matches_too(roformer, texts):
    directory, hf = roformer
    ours = load_hf_bert(directory)
    for block in ours.blocks:
        block.attn.fused = False
    assert worst_difference(ours, hf, padded_batches(directory, texts[:48], "right")) <= 1e-5


def test_without_the_row_permutation_the_outputs_differ(roformer, texts, monkeypatch):
    """RoFormer pairs dimensions (2i, 2i+1), nn.rotary (i, i + d/2): loading the rows unpermuted computes
    another model, so the parity above really rests on `interleave_rotary_rows`."""
    directory, hf = roformer
    assert interleave_rotary_rows(8, 4).tolist() == [0, 2, 1, 3, 4, 6, 5, 7]
    monkeypatch.setattr(hf_bert, "interleave_rotary_rows", lambda n_rows, d_head: torch.arange(n_rows))
    assert worst_difference(load_hf_bert(directory), hf, padded_batches(directory, texts[:32], "right")) > 1e-3


def test_our_sinusoid_table_is_transformers_own(roformer):
    directory, hf = roformer
    torch.testing.assert_close(roformer_sinusoids(MAX_POSITIONS, 16), hf.encoder.embed_positions.create_weight(),
                               atol=0, rtol=0)
    assert torch.equal(load_file(directory / "model.safetensors")["encoder.embed_positions.weight"],
                       roformer_sinusoids(MAX_POSITIONS, 16))


def test_text_encoder_and_our_tokenizer_on_a_roformer_directory(roformer, texts):
    directory, hf = roformer
    reference = transformers.AutoTokenizer.from_pretrained(str(directory))
    encoder = TextEncoder.from_pretrained(directory)
    assert encoder.tokenizer.encode_ids(texts, MAX_POSITIONS) == reference(texts, truncation=True,
                                                                          max_length=MAX_POSITIONS)["input_ids"]
    assert encoder.encode(texts[:20]).shape == (20, 32)


# ---------------------------------------------------------------------------------------- ours -> transformers
@pytest.mark.parametrize("n_segments", [2, 0])
def test_our_rotary_encoder_saves_as_roformer_and_transformers_computes_it(tmp_path, n_segments):
    model = tiny_rotary(n_segments=n_segments)
    with warnings.catch_warnings():
        warnings.simplefilter("error", EncoderlabOnlyWarning)  # nothing to warn about: RoFormer holds all of it
        save_hf_bert(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["model_type"], config["architectures"], config["rotary_value"]) == ("roformer",
                                                                                     ["RoFormerModel"], False)
    assert config["type_vocab_size"] == max(n_segments, 1) and config["max_position_embeddings"] == 40
    reloaded = transformers.AutoModel.from_pretrained(str(tmp_path)).eval()
    assert type(reloaded).__name__ == "RoFormerModel"
    assert worst_difference(model, reloaded, [random_batch()]) <= 1e-5
    again = load_hf_bert(tmp_path)
    ids, mask = random_batch()
    if n_segments:  # exactly the same tensors: the row permutation is undone on load
        assert again.cfg == model.cfg
        assert all(torch.equal(again.state_dict()[k], v) for k, v in model.state_dict().items())
    else:  # a one-row table of zeros stands for "no token types"
        assert again.cfg.n_segments == 1 and not again.embeddings.segments.weight.any()
    torch.testing.assert_close(again(ids, mask), model(ids, mask), atol=0, rtol=0)


def test_a_pooler_is_kept_for_us_and_said_to_be_ignored_by_transformers(tmp_path):
    model = tiny_rotary(pooler=True)
    with pytest.warns(EncoderlabOnlyWarning, match="RoFormerModel has no pooler"):
        save_hf_bert(model, tmp_path)
    assert "pooler.dense.weight" in load_file(tmp_path / "model.safetensors")
    reloaded = transformers.AutoModel.from_pretrained(str(tmp_path)).eval()
    assert worst_difference(model, reloaded, [random_batch()]) <= 1e-5
    again = load_hf_bert(tmp_path)
    assert again.cfg.pooler and torch.equal(again.pooler.weight, model.pooler.weight)


@torch.inference_mode()
def test_masked_lm_round_trips_through_transformers_roformer_for_masked_lm(tmp_path):
    torch.manual_seed(0)
    mlm = BertForMaskedLM(tiny_rotary().cfg).eval()
    with torch.no_grad():
        for p in mlm.parameters():
            p.add_(torch.randn(p.shape) * 0.05)
    save_hf_bert_mlm(mlm, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["model_type"], config["architectures"]) == ("roformer", ["RoFormerForMaskedLM"])
    assert all(k.startswith(("roformer.", "cls.")) for k in load_file(tmp_path / "model.safetensors"))
    reference = transformers.AutoModelForMaskedLM.from_pretrained(str(tmp_path)).eval()
    assert type(reference).__name__ == "RoFormerForMaskedLM"
    ids, mask = random_batch()
    real = mask.bool()
    expected = reference(input_ids=ids, attention_mask=mask).logits
    assert (mlm(ids, mask) - expected)[real].abs().max().item() <= 1e-4  # logits: 120 classes, larger values
    loaded = load_hf_bert_mlm(tmp_path)
    assert torch.equal(loaded(ids, mask), mlm(ids, mask))
    assert worst_difference(load_hf_bert(tmp_path), transformers.AutoModel.from_pretrained(str(tmp_path)),
                            [(ids, mask)]) <= 1e-5  # the encoder alone, as sentence-transformers loads it


@torch.inference_mode()
def test_a_transformers_roformer_for_masked_lm_loads_with_its_head(tmp_path, sentences):
    hf = build_roformer(tmp_path, sentences, task_model=True)
    ours = load_hf_bert_mlm(tmp_path)
    ids, mask = next(padded_batches(tmp_path, sentences[:16], "right"))
    expected = hf(input_ids=ids, attention_mask=mask).logits
    assert (ours(ids, mask) - expected)[mask.bool()].abs().max().item() <= 1e-4


# ---------------------------------------------------------------------------------------- the old layout
def test_the_older_encoderlab_bert_rotary_layout_still_loads_and_saves_back_as_roformer(tmp_path):
    """Before the RoFormer layout, rotary post-LN encoders were saved under model_type encoderlab-bert: BERT's
    names, our half-split rows, no sinusoid table. Such a checkpoint loads unchanged."""
    model = tiny_rotary()
    old = tmp_path / "old"
    old.mkdir()
    as_bert = BertConfig(**{**vars(model.cfg), "positions": "learned"})  # same fields, BERT's config.json names
    config = {k: v for k, v in config_to_hf(as_bert).items() if k != "position_embedding_type"}
    config.update(model_type="encoderlab-bert", architectures=["EncoderlabBertModel"], encoderlab_positions="rotary",
                  encoderlab_norm_position="post", encoderlab_ffn_kind="mlp")
    (old / "config.json").write_text(json.dumps(config))
    ours = model.state_dict()
    save_file({hf: ours[name].contiguous() for hf, name in key_map(model.cfg, pooler=False, layout="bert").items()},
              old / "model.safetensors")
    loaded = load_hf_bert(old)
    assert loaded.cfg == model.cfg
    ids, mask = random_batch()
    assert torch.equal(loaded(ids, mask), model(ids, mask))
    save_hf_bert(loaded, tmp_path / "new")
    assert json.loads((tmp_path / "new" / "config.json").read_text())["model_type"] == "roformer"


# ---------------------------------------------------------------------------------------- what RoFormer cannot hold
@pytest.mark.parametrize("variant, named", [
    (dict(norm_position="pre"), "pre-LN"),
    (dict(ffn_kind="glu"), "GLU feed-forward"),
    (dict(positions="sinusoidal"), "sinusoidal positions"),
    (dict(positions="learned", n_segments=0), "no token-type embeddings"),
])
def test_variants_no_family_computes_are_named_at_save_time(tmp_path, variant, named):
    model = tiny_rotary(**variant)
    with pytest.warns(EncoderlabOnlyWarning, match=f"{named}.*saved as model_type 'encoderlab-bert'"):
        save_hf_bert(model, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "encoderlab-bert"
    with pytest.warns(EncoderlabOnlyWarning, match=named):
        save_hf_bert_mlm(BertForMaskedLM(model.cfg), tmp_path / "mlm")


def test_a_plain_bert_saves_without_a_warning(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", EncoderlabOnlyWarning)
        save_hf_bert(tiny_rotary(positions="learned"), tmp_path)


def _edit(directory, **changes):
    config = json.loads((directory / "config.json").read_text())
    config.update(changes)
    (directory / "config.json").write_text(json.dumps(config))


def test_roformer_options_we_do_not_compute_are_refused(tmp_path):
    save_hf_bert(tiny_rotary(), tmp_path)
    _edit(tmp_path, rotary_value=True)
    with pytest.raises(CheckpointError, match="rotary_value=true rotates the values too"):
        load_hf_bert(tmp_path)
    _edit(tmp_path, rotary_value=False, embedding_size=16)
    with pytest.raises(CheckpointError, match="embedding_size=16 differs from hidden_size=32"):
        load_hf_bert(tmp_path)


def test_a_sinusoid_table_with_other_angles_is_refused(tmp_path):
    save_hf_bert(tiny_rotary(), tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    weights["encoder.embed_positions.weight"] = roformer_sinusoids(40, 16) * 0.5
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="is not RoFormer's sinusoid table"):
        load_hf_bert(tmp_path)
