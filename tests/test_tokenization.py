"""Training WordPiece / byte-level BPE tokenizers on real text: special tokens, Chinese characters,
encode -> decode round trips, truncation, padding, saving and loading (also by transformers)."""

import pytest

from encoderlab import ConfigError, InputDataError, TextTokenizer
from encoderlab.data.catalog import load_text_splits
from encoderlab.tokenization import SPECIAL_TOKENS, TokenizerConfig, train_tokenizer


@pytest.fixture(scope="module")
def english():
    return load_text_splits("tweets-sentiment", split="0.9,0.1,0.0").train.texts[:3000]


@pytest.fixture(scope="module")
def chinese():
    return load_text_splits("zh-reviews-sentiment", split="0.9,0.1,0.0").train.texts[:1500]


@pytest.fixture(scope="module")
def wordpiece(english, chinese):
    return train_tokenizer(english + chinese, TokenizerConfig(kind="wordpiece", vocab_size=4000))


@pytest.fixture(scope="module")
def bpe(english, chinese):
    return train_tokenizer(english + chinese, TokenizerConfig(kind="bpe", vocab_size=4000, lowercase=False))


@pytest.mark.parametrize("name", ["wordpiece", "bpe"])
def test_special_tokens_come_first_and_wrap_every_text(name, request):
    tok = request.getfixturevalue(name)
    assert [tok.tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert tok.special_ids() == [0, 1, 2, 3, 4] and tok.pad_id == 0
    ids = tok.encode_ids(["the driverless car"], 64)[0]
    assert ids[0] == tok.special_id("[CLS]") and ids[-1] == tok.special_id("[SEP]")
    assert 3800 <= tok.vocab_size <= 4200


def test_wordpiece_round_trip_lowercases_and_splits_words(wordpiece):
    text = "I would never trust a self-driving car with my kids."
    ids = wordpiece.encode_ids([text], 128)[0]
    assert wordpiece.decode(ids) == "i would never trust a self - driving car with my kids."
    pieces = wordpiece.tokenizer.encode("autonomousness").tokens
    assert any(p.startswith("##") for p in pieces)  # an unseen word becomes known pieces, not [UNK]


def test_every_han_character_is_its_own_token(wordpiece, bpe):
    text = "这本书的质量很好"
    pieces = wordpiece.tokenizer.encode(text, add_special_tokens=False).tokens
    assert pieces == list(text)  # as BERT-Chinese
    assert wordpiece.decode(wordpiece.encode_ids([text], 64)[0]).replace(" ", "") == text
    bpe_ids = bpe.tokenizer.encode(text, add_special_tokens=False).ids
    assert [bpe.decode([i]) for i in bpe_ids] == list(text)  # no BPE merge spans two characters


def test_byte_level_bpe_round_trip_is_exact(bpe):
    for text in ["Self-Driving cars?  Never!!", "café déjà vu", "质量很好，推荐！ 5 stars 🙂", "tabs\tand\nnewlines"]:
        assert bpe.decode(bpe.encode_ids([text], 512)[0]) == text
    assert "[UNK]" not in bpe.tokenizer.encode("ʬ ᚠ unseen runes").tokens


def test_truncation_and_padding(wordpiece):
    batch = wordpiece(["a short one", "a much longer text that will certainly be cut off at eight tokens"], 8)
    assert tuple(batch.input_ids.shape) == (2, 8)
    assert batch.input_ids[1, -1].item() == wordpiece.special_id("[SEP]")  # truncation keeps [SEP]
    short = int(batch.attention_mask[0].sum())
    assert short < 8 and (batch.input_ids[0, short:] == wordpiece.pad_id).all()


def test_save_and_load_gives_the_same_ids_here_and_in_transformers(wordpiece, tmp_path):
    wordpiece.save_trained(tmp_path, model_max_length=128)
    texts = ["Autonomous cars are coming", "这本书很好"]
    loaded = TextTokenizer.from_dir(tmp_path)
    assert loaded.encode_ids(texts, 128) == wordpiece.encode_ids(texts, 128)
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    assert hf(texts)["input_ids"] == wordpiece.encode_ids(texts, 128)
    assert hf.mask_token == "[MASK]" and hf.pad_token_id == 0


def test_bad_tokenizer_configs_and_corpora():
    with pytest.raises(ConfigError, match=r"vocab_size=4 is too small: the 5 special tokens"):
        TokenizerConfig(vocab_size=4)
    with pytest.raises(ConfigError, match="256 byte symbols"):
        TokenizerConfig(kind="bpe", vocab_size=100)
    with pytest.raises(InputDataError, match="empty corpus"):
        train_tokenizer(["", "   "], TokenizerConfig(vocab_size=100))


def test_pad_id_is_found_without_tokenizer_config(tmp_path):
    """A RoBERTa-style byte-level BPE (<s>=0, <pad>=1) whose directory has only tokenizer.json pads with <pad>,
    not with id 0; a BERT WordPiece still pads with [PAD]."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from encoderlab.data.catalog import load_dataset

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                  show_progress=False)
    bpe.train_from_iterator(load_dataset("bbc-news").train.texts[:50], trainer=trainer)
    bpe.save(str(tmp_path / "tokenizer.json"))
    assert TextTokenizer.from_dir(tmp_path).pad_id == 1
    bpe.enable_padding(pad_id=3, pad_token="<unk>")  # a tokenizer.json that says what it pads with wins
    assert TextTokenizer(bpe).pad_id == 3


# ---------------------------------------------------------------------------- determinism
# Trains the three kinds of vocabulary on the same real corpus and prints each tokenizer.json's sha256. Run
# in fresh processes: `tokenizers` seeds its hash maps per process, which is what used to change the result.
TRAIN_AND_HASH = """
import hashlib
from encoderlab.data.catalog import load_text_splits
from encoderlab.tokenization import TokenizerConfig, train_tokenizer

english = load_text_splits("tweets-sentiment,bbc-news", split="0.9,0.1,0.0").train.texts[:6000]
chinese = load_text_splits("peoples-daily-1998", split="0.9,0.1,0.0").train.texts[:3000]
for name, texts, cfg in [("wordpiece", english, TokenizerConfig(kind="wordpiece", vocab_size=6000)),
                         ("bpe", english, TokenizerConfig(kind="bpe", vocab_size=6000, lowercase=False)),
                         ("char", chinese, TokenizerConfig(kind="wordpiece", vocab_size=4000, chinese_chars=True,
                                                           limit_alphabet=2500))]:
    print(name, hashlib.sha256(train_tokenizer(texts, cfg).tokenizer.to_str().encode()).hexdigest())
"""


@pytest.mark.slow
def test_training_gives_byte_identical_tokenizer_json_in_every_process_and_thread_count():
    import os
    import subprocess
    import sys

    runs = []
    for threads, parallel in (("1", "false"), ("2", "true"), ("2", "true")):
        env = dict(os.environ, RAYON_NUM_THREADS=threads, TOKENIZERS_PARALLELISM=parallel)
        out = subprocess.run([sys.executable, "-c", TRAIN_AND_HASH], env=env, capture_output=True, text=True,
                             check=True).stdout
        runs.append(dict(line.split() for line in out.splitlines()))
    assert set(runs[0]) == {"wordpiece", "bpe", "char"}
    assert runs[1] == runs[0] and runs[2] == runs[0]


def test_text_order_does_not_change_the_tokenizer(english):
    cfg = TokenizerConfig(kind="wordpiece", vocab_size=2000)
    first = train_tokenizer(english[:1500], cfg).tokenizer.to_str()
    assert train_tokenizer(english[:1500][::-1], cfg).tokenizer.to_str() == first


def test_the_alphabet_cut_keeps_the_most_frequent_characters_and_breaks_ties_by_code_point():
    from collections import Counter

    from encoderlab.tokenization import keep_alphabet

    words = Counter({"aab": 3, "c": 2, "d": 2, "bd": 1})  # a: 6, b: 4, c: 2, d: 3
    assert keep_alphabet(words, 4) == words
    assert keep_alphabet(words, 3) == Counter({"aab": 3, "d": 2, "bd": 1})  # c (2) goes
    assert keep_alphabet(Counter({"x": 1, "y": 1, "z": 1}), 2) == Counter({"x": 1, "y": 1})  # a tie: x, y stay
    tok = train_tokenizer(["aab c d bd"] * 5, TokenizerConfig(vocab_size=40, limit_alphabet=3, min_frequency=1))
    assert tok.tokenizer.encode("c", add_special_tokens=False).tokens == ["[UNK]"]
    assert tok.tokenizer.encode("bd", add_special_tokens=False).tokens in (["bd"], ["b", "##d"])


def test_continuation_pieces_are_ordinary_tokens(wordpiece):
    """WordPiece's `##x` pieces are registered before training to fix their ids; they must not end up special
    (a special token is never masked, and would be split out of text as a whole)."""
    assert wordpiece.special_ids() == [0, 1, 2, 3, 4]
    assert wordpiece.tokenizer.encode("##s", add_special_tokens=False).tokens == ["#", "#", "s"]
    assert any(t.startswith("##") for t in wordpiece.tokenizer.encode("unhappiness").tokens)
