"""The MLM data pipeline on real text: token files, packing, documents, masking, collation, bucketing."""

import numpy as np
import pytest
import torch

from encoderlab import ConfigError, InputDataError
from encoderlab.data.catalog import load_text_splits
from encoderlab.data.mlm import (
    DocumentSequences,
    MaskedOnce,
    MLMCollator,
    MLMMasker,
    PackedSequences,
    TokenFile,
    pad_items,
    write_token_file,
)
from encoderlab.tokenization import TokenizerConfig, train_tokenizer


@pytest.fixture(scope="module")
def texts():
    return load_text_splits("bbc-news", split="0.9,0.1,0.0").train.texts[:60]


@pytest.fixture(scope="module")
def tokenizer(texts):
    return train_tokenizer(texts, TokenizerConfig(vocab_size=1500))


@pytest.fixture(scope="module")
def tokens(texts, tokenizer, tmp_path_factory):
    return write_token_file(texts, tokenizer, tmp_path_factory.mktemp("tok") / "train")


def masker_for(tokenizer, **kwargs):
    return MLMMasker(kwargs.pop("mask_prob", 0.15), tokenizer.special_id("[MASK]"), tokenizer.vocab_size,
                     tokenizer.special_ids(), **kwargs)


def test_token_file_holds_every_document_once_with_a_separator(texts, tokenizer, tokens):
    sep = tokenizer.special_id("[SEP]")
    assert tokens.n_documents == len(texts) and int((np.asarray(tokens.ids) == sep).sum()) == len(texts)
    first = tokenizer.tokenizer.encode(texts[0], add_special_tokens=False).ids
    assert list(tokens.ids[:len(first) + 1]) == first + [sep]
    assert tokens.ids.dtype == np.uint16 and isinstance(tokens.ids, np.memmap)


def test_token_file_is_reused_for_the_same_corpus(texts, tokenizer, tokens, tmp_path):
    prefix = tmp_path / "t"
    write_token_file(texts[:5], tokenizer, prefix)
    mtime = (tmp_path / "t.ids.bin").stat().st_mtime_ns
    assert write_token_file(texts[:5], tokenizer, prefix).n_tokens == TokenFile.open(prefix).n_tokens
    assert (tmp_path / "t.ids.bin").stat().st_mtime_ns == mtime
    assert write_token_file(texts[:6], tokenizer, prefix).n_documents == 6  # another corpus: rewritten


def test_packed_sequences_are_full_and_cover_the_stream(tokenizer, tokens):
    packed = PackedSequences(tokens, 64, tokenizer.special_id("[CLS]"))
    assert len(packed) == tokens.n_tokens // 63
    items = [packed[i] for i in range(len(packed))]
    assert all(len(it["input_ids"]) == 64 and it["input_ids"][0] == tokenizer.special_id("[CLS]") for it in items)
    body = np.concatenate([it["input_ids"][1:] for it in items])
    assert (body == np.asarray(tokens.ids[:len(body)])).all()


def test_document_sequences_keep_documents_apart(tokenizer, tokens):
    docs = DocumentSequences(tokens, 64, tokenizer.special_id("[CLS]"))
    lengths = [docs.length(i) for i in range(len(docs))]
    assert max(lengths) == 64 and min(lengths) < 64 and len(docs) > tokens.n_documents
    item = docs[0]
    assert item["input_ids"][0] == tokenizer.special_id("[CLS]") and item["input_ids"][-1] == tokens.sep_id
    assert tokens.sep_id not in item["input_ids"][1:-1]


def test_too_little_text_for_one_sequence_or_none_at_all(tokenizer, tmp_path):
    few = write_token_file(["just a few words"], tokenizer, tmp_path / "few")
    with pytest.raises(InputDataError, match=r"fewer than one sequence of max_seq_len=128"):
        PackedSequences(few, 128, 2)
    with pytest.raises(InputDataError, match="corpus .* is empty"):
        write_token_file(["", "  "], tokenizer, tmp_path / "empty")


def test_masking_rate_and_80_10_10_split(tokenizer, tokens):
    packed = PackedSequences(tokens, 128, tokenizer.special_id("[CLS]"))
    batch = pad_items([packed[i] for i in range(len(packed))], tokenizer.pad_id)
    masker = masker_for(tokenizer, mask_prob=0.3)
    generator = torch.Generator().manual_seed(0)
    corrupted, positions, labels = masker(batch["input_ids"], batch["attention_mask"], batch["word_starts"], generator)
    candidates = int((~masker.is_special[batch["input_ids"]]).sum())
    assert abs(positions.numel() / candidates - 0.3) < 0.01
    flat_in, flat_out = batch["input_ids"].view(-1), corrupted.view(-1)
    assert (flat_in[positions] == labels).all() and not masker.is_special[labels].any()
    was_masked = (flat_out[positions] == tokenizer.special_id("[MASK]")).float().mean()
    kept = (flat_out[positions] == labels).float().mean()
    assert abs(was_masked - 0.8) < 0.02 and abs(kept - 0.1) < 0.02  # (random tokens rarely hit the label)
    untouched = torch.ones_like(flat_in, dtype=torch.bool)
    untouched[positions] = False
    assert (flat_out[untouched] == flat_in[untouched]).all()


def test_whole_word_masking_masks_all_pieces_of_a_word(tokenizer, tokens):
    packed = PackedSequences(tokens, 128, tokenizer.special_id("[CLS]"))
    batch = pad_items([packed[i] for i in range(20)], tokenizer.pad_id)
    masker = masker_for(tokenizer, mask_prob=0.2, whole_word=True)
    _, positions, _ = masker(batch["input_ids"], batch["attention_mask"], batch["word_starts"],
                             torch.Generator().manual_seed(1))
    chosen = torch.zeros(batch["input_ids"].numel(), dtype=torch.bool)
    chosen[positions] = True
    starts = batch["word_starts"].view(-1).bool()
    continuation = (~starts).nonzero().squeeze(1)
    continuation = continuation[continuation % 128 != 1]  # a word cut by packing may start right after [CLS]
    assert (chosen[continuation] == chosen[continuation - 1]).all()  # a piece goes with the piece before it
    assert (chosen[continuation]).any()


def test_collator_masks_only_real_tokens_and_positions_point_at_labels(tokenizer, tokens):
    docs = DocumentSequences(tokens, 64, tokenizer.special_id("[CLS]"))
    items = [docs[i] for i in range(8)]
    batch = MLMCollator(masker_for(tokenizer), tokenizer.pad_id)(items)
    B, T = batch["input_ids"].shape
    assert batch["attention_mask"].view(-1)[batch["masked_positions"]].all()
    originals = pad_items(items, tokenizer.pad_id)["input_ids"].view(-1)
    assert (originals[batch["masked_positions"]] == batch["labels"]).all() and batch["labels"].numel() > 0


def test_held_out_masks_are_fixed(tokenizer, tokens):
    packed = PackedSequences(tokens, 64, tokenizer.special_id("[CLS]"))
    once = MaskedOnce(packed, masker_for(tokenizer), seed=3)
    a, b = once[5], once[5]
    assert (a["input_ids"] == b["input_ids"]).all() and (a["masked_positions"] == b["masked_positions"]).all()
    batch = MLMCollator(masker_for(tokenizer), tokenizer.pad_id)([once[i] for i in range(4)])
    assert (batch["input_ids"][1] == torch.from_numpy(once[1]["input_ids"])).all()


def test_mask_prob_must_be_a_fraction(tokenizer):
    with pytest.raises(ConfigError, match="mask_prob=1.5"):
        masker_for(tokenizer, mask_prob=1.5)
