"""Warm-starting the Transformer encoder-decoder from one of our MLM runs (Rothe et al. 2020): a tiny BERT
pretrained on both sides of the Spanish-English slice's training split, loaded into the encoder (BERT2RND)
and into the decoder's self-attention and feed-forward blocks too (BERT2BERT); the run trains, saves and
reloads; bad combinations fail with the fix."""

from pathlib import Path

import pytest
import torch

from encoderlab.config import from_dict
from encoderlab.errors import CheckpointError, ConfigError, InputDataError
from encoderlab.interop.hf_bert import load_hf_bert
from encoderlab.models.decoding import PAD
from encoderlab.models.transformer_seq2seq import TransformerSeq2Seq, TransformerSeq2SeqConfig, warm_start_encoder
from encoderlab.tasks.pretrain import PretrainConfig, pretrain_mlm
from encoderlab.tasks.seq2seq import Seq2SeqConfig, Seq2SeqPredictor, seq2seq_command, write_training_text
from encoderlab.tokenization import TextTokenizer

torch.set_num_threads(1)
pytestmark = pytest.mark.slow  # an MLM run and two seq2seq runs: about a minute on one core
BIBLE_SLICE = Path(__file__).resolve().parents[1] / "data" / "bible-es-en-slice.tsv"
PAIRS = [f"data={BIBLE_SLICE}", "source_column=spanish", "target_column=english", "group_column=chapter",
         "source_tokens=subword", "target_tokens=subword", "split=0.8,0.1,0.1"]
TINY = ["threads=1", "progress=off", *PAIRS, "model.kind=transformer", "model.n_decoder_layers=2",
        "model.max_positions=160", "model.share_embeddings=true", "model.dropout=0.0", "model.attention_dropout=0.0",
        "batch_size=16", "lr=3e-3", "warmup_steps=5", "log_every=10", "max_steps=40", "beam_size=2",
        "length_penalty=0.6", "max_test_examples=10", "max_output_length=40", "eval_every=0",
        "baselines=false"]


@pytest.fixture(scope="module")
def mlm_run(tmp_path_factory):
    """An MLM run of ours on the slice's training split, both languages, cased WordPiece, learned positions."""
    root = tmp_path_factory.mktemp("warm")
    text = root / "train.txt"
    assert write_training_text(None, text, PAIRS) > 400  # sources + targets of the training chapters only
    out = root / "mlm"
    pretrain_mlm(from_dict(PretrainConfig, dict(
        data=str(text), out_dir=str(out), max_steps=30, batch_size=8, max_seq_len=64, threads=1, progress="off",
        lr=3e-3, warmup_steps=5, eval_every=0, save_every=0, log_every=10,
        model={"preset": "bert-tiny", "positions": "learned", "dropout": 0.0, "attention_dropout": 0.0},
        tokenizer={"vocab_size": 600, "lowercase": False})))
    return out


def test_the_training_text_holds_no_test_pair(tmp_path):
    from encoderlab.tasks.seq2seq import prepare_data

    path = tmp_path / "t.txt"
    write_training_text(None, path, PAIRS)
    lines = set(path.read_text(encoding="utf-8").splitlines())
    data = prepare_data(Seq2SeqConfig(data=str(BIBLE_SLICE), source_column="spanish", target_column="english",
                                      group_column="chapter", source_tokens="subword", target_tokens="subword",
                                      split="0.8,0.1,0.1"))
    assert set(data.train.sources) <= lines and set(data.train.targets) <= lines
    assert not lines & (set(data.test.sources) | set(data.test.targets) | set(data.validation.targets))


def test_the_warm_started_encoder_computes_what_the_checkpoint_computes(mlm_run):
    bert = load_hf_bert(mlm_run / "final").eval()  # has segment embeddings and a pooler; ours has neither
    vocab_size = TextTokenizer.from_dir(mlm_run / "final").vocab_size
    cfg = TransformerSeq2SeqConfig(d_model=128, n_heads=2, d_ff=512, n_encoder_layers=2, n_decoder_layers=1,
                                   norm_position="post", max_positions=160, source_vocab_size=vocab_size,
                                   target_vocab_size=vocab_size, share_embeddings=True)
    model = TransformerSeq2Seq(cfg).eval()
    copied = warm_start_encoder(model, bert)
    assert copied["position_rows"] == 64  # the checkpoint's 64 rows; rows 64-159 stay fresh
    ids = torch.randint(5, vocab_size, (3, 20), generator=torch.Generator().manual_seed(0))
    ids[1, 12:] = PAD
    mask = (ids != PAD).long()
    with torch.no_grad():
        ours, _ = model.encode(ids)  # (B, S, C), zeros at padding
        theirs = bert(ids, mask) * mask[..., None]
    # equal up to the LayerNorm epsilon (1e-6 here, BERT's 1e-12)
    torch.testing.assert_close(ours, theirs, atol=2e-4, rtol=1e-4)
    wrong = TransformerSeq2Seq(TransformerSeq2SeqConfig(d_model=64, n_heads=2, d_ff=128, n_encoder_layers=2,
                                                        source_vocab_size=vocab_size, target_vocab_size=vocab_size))
    with pytest.raises(CheckpointError, match="does not fit the encoder"):
        warm_start_encoder(wrong, bert)


def test_bert2bert_run_trains_saves_and_reloads(mlm_run, tmp_path):
    out = tmp_path / "b2b"
    metrics = seq2seq_command(None, [*TINY, f"out_dir={out}", f"init={mlm_run}", "decoder_init=encoder"])
    assert metrics["warm_start"] == str(mlm_run) and metrics["warm_start_decoder_blocks"] == 2
    assert metrics["warm_start_tensors"] >= 30
    translator = Seq2SeqPredictor.from_dir(out)
    model, bert = translator.model, load_hf_bert(mlm_run / "final")
    assert model.cfg.d_model == 128 and model.cfg.norm_position == "post"  # the checkpoint's shape
    # one joint vocabulary: the checkpoint's own tokenizer, cased, its [CLS] / [SEP] as BOS / EOS
    checkpoint_tokenizer = TextTokenizer.from_dir(mlm_run / "final").tokenizer
    assert translator.source_vocab.tokens[:4] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    assert len(translator.source_vocab) == checkpoint_tokenizer.get_vocab_size()
    assert translator.source_vocab.encode("Dios") == checkpoint_tokenizer.encode("Dios", add_special_tokens=False).ids
    assert translator.target_vocab.tokens == translator.source_vocab.tokens
    # training moved the weights away from the checkpoint; the saved model translates as the run scored
    assert not torch.equal(model.encoder.blocks[0].attn.query.weight, bert.blocks[0].attn.query.weight)
    outputs = translator.predict(["Y dijo Dios: Sea la luz"], beam_size=2, length_penalty=0.6)
    assert outputs == Seq2SeqPredictor.from_dir(out).predict(["Y dijo Dios: Sea la luz"], beam_size=2,
                                                               length_penalty=0.6)
    for name in ("test_bleu", "test_chrf", "test_beam2_chrf"):
        assert 0 <= metrics[name] <= 100


def test_bert2bert_copies_blocks_and_leaves_cross_attention_fresh(mlm_run):
    from encoderlab.models.transformer_seq2seq import config_for_pretrained, copy_encoder_into_decoder

    bert = load_hf_bert(mlm_run / "final")
    vocab_size = TextTokenizer.from_dir(mlm_run / "final").vocab_size
    cfg = config_for_pretrained(TransformerSeq2SeqConfig(n_decoder_layers=2, max_positions=64, share_embeddings=True,
                                                         source_vocab_size=vocab_size, target_vocab_size=vocab_size),
                                bert.cfg, "test")
    torch.manual_seed(0)
    model = TransformerSeq2Seq(cfg)
    fresh_cross = model.blocks[0].cross_attn.query.weight.clone()
    warm_start_encoder(model, bert)
    assert copy_encoder_into_decoder(model) == 2
    for block, source in zip(model.blocks, model.encoder.blocks, strict=True):
        assert torch.equal(block.self_attn.query.weight, source.attn.query.weight)
        assert torch.equal(block.ffn_norm.weight, source.ffn_norm.weight)
    assert torch.equal(model.embeddings.positions.weight, model.encoder.embeddings.positions.weight)
    assert torch.equal(model.blocks[0].cross_attn.query.weight, fresh_cross)  # no cross-attention in a BERT
    too_deep = TransformerSeq2Seq(TransformerSeq2SeqConfig(**{**cfg.__dict__, "n_decoder_layers": 3}))
    with pytest.raises(ConfigError, match="model.n_decoder_layers=2 or fewer"):
        copy_encoder_into_decoder(too_deep)


def test_warm_start_errors_name_the_fix(mlm_run, tmp_path):
    with pytest.raises(ConfigError, match="set model.kind=transformer"):
        Seq2SeqConfig(init=str(mlm_run))
    with pytest.raises(ConfigError, match="give init=RUN_DIR"):
        Seq2SeqConfig(model=TransformerSeq2SeqConfig(), decoder_init="encoder")
    with pytest.raises(ConfigError, match="set source_tokens=subword"):
        Seq2SeqConfig(model=TransformerSeq2SeqConfig(), init=str(mlm_run))
    # minilm's tokenizer keeps [UNK] [CLS] [SEP] at ids 100-102, not 1-3
    with pytest.raises(InputDataError, match=r"ids 0-3 are \['\[PAD\]', '\[unused0\]'"):
        seq2seq_command(None, [*TINY, f"out_dir={tmp_path / 'minilm'}", "init=minilm"])
    assert not (tmp_path / "minilm" / "final").exists()
