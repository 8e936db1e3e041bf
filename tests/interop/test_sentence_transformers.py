"""`sentence_transformers.SentenceTransformer(PATH)` loads every text encoder encoderlab saves and embeds like
encoderlab does: `TextEncoder.save_pretrained` (what `embed` and `distill` write) in each family's layout, BERT
and RoFormer encoders we build and tokenizers we train, and the `final/` directory of a `pretrain` run (no
sentence-transformers files there: both sides then mean-pool without normalising)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from encoderlab import BertConfig, BertModel, TextEncoder
from encoderlab.tokenization import TokenizerConfig, train_tokenizer

from .tiny_families import MAX_POSITIONS, bbc_sentences, build_distilbert, build_roberta
from .varied_texts import varied_texts

sentence_transformers = pytest.importorskip("sentence_transformers")


def st_encode(directory, texts):
    """sentence-transformers' embeddings of `texts`, stripped first: TextEncoder strips each text as
    sentence-transformers 3.x did; 6.x no longer does, which changes the byte-level BPE tokens (RoBERTa's) of a
    text with spaces around it (measured: only such texts differ, by up to 0.12)."""
    model = sentence_transformers.SentenceTransformer(str(directory), device="cpu")
    return model, model.encode([t.strip() for t in texts], batch_size=16, convert_to_numpy=True)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(scope="module")
def sentences():
    return bbc_sentences()


@pytest.fixture(scope="module")
def texts(sentences):
    return varied_texts() + sentences[:40]


def our_encoder(sentences, positions: str, seed: int = 0) -> TextEncoder:
    """A 2-layer encoder of ours (weights moved off their initial values) with a WordPiece trained here and
    never saved before: `save_pretrained` writes every tokenizer file itself."""
    torch.manual_seed(seed)
    tokenizer = train_tokenizer(sentences, TokenizerConfig(vocab_size=700))
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, d_model=32, n_layers=2, n_heads=4, d_ff=48,
                     max_positions=MAX_POSITIONS, positions=positions, pooler=False)
    bert = BertModel(cfg)
    with torch.no_grad():
        for p in bert.parameters():
            p.add_(torch.randn(p.shape) * 0.05)
    return TextEncoder(bert, tokenizer).eval()


SAVED = ["minilm", "distilbert", "roberta", "xlm-roberta", "bert-ours", "roformer-ours"]


@pytest.fixture(scope="module", params=SAVED)
def saved(request, tmp_path_factory, sentences, minilm_dir):
    """(name, a directory written by TextEncoder.save_pretrained)."""
    name, root = request.param, tmp_path_factory.mktemp(request.param)
    if name == "minilm":
        encoder = TextEncoder.from_pretrained("minilm")
    elif name in ("bert-ours", "roformer-ours"):
        encoder = our_encoder(sentences, "learned" if name == "bert-ours" else "rotary")
    else:
        if name == "distilbert":
            build_distilbert(root / "source", minilm_dir)
        else:
            build_roberta(root / "source", sentences, model_type=name)
        encoder = TextEncoder.from_pretrained(root / "source")
    return name, encoder.save_pretrained(root / "saved")


def test_sentence_transformers_loads_what_save_pretrained_writes_with_the_same_embeddings(saved, texts):
    name, directory = saved
    model_type = json.loads((directory / "config.json").read_text())["model_type"]
    assert model_type == {"minilm": "bert", "bert-ours": "bert", "roformer-ours": "roformer"}.get(name, name)
    ours = TextEncoder.from_pretrained(directory)
    expected = ours.encode(texts, batch_size=16)
    theirs, got = st_encode(directory, texts)
    assert theirs.max_seq_length == ours.max_seq_length
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-5, name


@pytest.mark.slow
def test_sentence_transformers_loads_a_pretraining_runs_final_directory(tmp_path, texts):
    """`encoderlab pretrain` with its defaults (rotary positions) writes final/ as RoFormerForMaskedLM and a
    trained WordPiece; sentence-transformers takes the encoder, mean-pools and does not normalise."""
    from encoderlab.cli import main

    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain", "--config", str(CONFIGS / "pretrain-tiny-en.yaml"), "data=bbc-news", "max_documents=100",
              "max_steps=20", "batch_size=8", "max_seq_len=64", "tokenizer.vocab_size=1500", "eval_every=20",
              "max_eval_sequences=16", "warmup_steps=5", "save_every=0", "threads=1", "progress=off",
              f"out_dir={out}"])
    assert exit_info.value.code == 0
    final = out / "final"
    assert json.loads((final / "config.json").read_text())["model_type"] == "roformer"
    expected = TextEncoder.from_pretrained(final).encode(texts, batch_size=16, normalize=False)
    _, got = st_encode(final, texts)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
