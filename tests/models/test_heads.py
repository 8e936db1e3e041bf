import pytest
import torch

from encoderlab import BertConfig, BertModel
from encoderlab.models.heads import (
    IGNORE_INDEX,
    EncoderWithHead,
    ProjectionHead,
    SequenceClassificationHead,
    TokenClassificationHead,
    align_word_labels,
)

TINY = dict(vocab_size=50, d_model=16, n_layers=2, n_heads=2, d_ff=32, max_positions=12, dropout=0.0,
            attention_dropout=0.0)


def _batch():
    ids = torch.tensor([[2, 7, 9, 11, 3], [2, 5, 3, 0, 0]])
    return ids, (ids != 0).long()


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_sequence_head_shapes_and_backward(pooling):
    torch.manual_seed(0)
    model = EncoderWithHead(BertModel(BertConfig(**TINY)), SequenceClassificationHead(16, 3, pooling, 0.1))
    ids, mask = _batch()
    logits = model(ids, mask)
    assert logits.shape == (2, 3)
    logits.sum().backward()
    assert model.head.out.weight.grad is not None and model.bert.embeddings.tokens.weight.grad is not None


def test_mean_pooling_ignores_padding():
    torch.manual_seed(0)
    head = SequenceClassificationHead(4, 2, "mean", 0.0)
    hidden = torch.randn(1, 3, 4)
    padded = torch.cat([hidden, torch.full((1, 2, 4), 1e4)], dim=1)  # (1, 5, 4) with huge junk at padding
    mask = torch.tensor([[1, 1, 1, 0, 0]])
    torch.testing.assert_close(head.pool(padded, mask), hidden.mean(1))
    torch.testing.assert_close(head(padded, mask), head.classify(hidden.mean(1)))


def test_cls_pooling_takes_first_token():
    head = SequenceClassificationHead(4, 2, "cls", 0.0)
    hidden = torch.randn(2, 3, 4)
    torch.testing.assert_close(head.pool(hidden, torch.ones(2, 3)), hidden[:, 0])


def test_token_head_and_projection_head_shapes():
    hidden, mask = torch.randn(2, 5, 16), torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    assert TokenClassificationHead(16, 7)(hidden, mask).shape == (2, 5, 7)
    out = ProjectionHead(16, 8, normalize=True)(hidden, mask)
    assert out.shape == (2, 8)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))


def test_heads_reject_a_single_label():
    with pytest.raises(ValueError, match="at least 2"):
        SequenceClassificationHead(8, 1)
    with pytest.raises(ValueError, match="pooling"):
        SequenceClassificationHead(8, 2, pooling="max")


def test_align_word_labels_first_piece_only():
    # [CLS] un ##believ ##able news [SEP]: word 0 has three pieces
    assert align_word_labels([None, 0, 0, 0, 1, None], [4, 9]) == [IGNORE_INDEX, 4, IGNORE_INDEX, IGNORE_INDEX,
                                                                   9, IGNORE_INDEX]
    assert align_word_labels([None, None], []) == [IGNORE_INDEX, IGNORE_INDEX]


def test_align_word_labels_with_a_real_tokenizer(minilm_dir):
    from encoderlab.tokenization import TextTokenizer

    tok = TextTokenizer.from_dir(minilm_dir).tokenizer
    words = ["Tokenization", "is", "unbelievably", "fun"]
    enc = tok.encode(words, is_pretokenized=True)
    labels = align_word_labels(enc.word_ids, [1, 2, 3, 4])
    labelled = [lab for lab in labels if lab != IGNORE_INDEX]
    assert labelled == [1, 2, 3, 4]  # every word counted exactly once, however many pieces it has
    assert len(enc.ids) > len(words) + 2  # some words really were split into pieces
