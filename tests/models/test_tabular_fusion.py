"""Tabular encoders and text + tabular fusion: shapes, gradients, and fusion over an empty table = the text model."""

import pytest
import torch

from encoderlab.errors import ConfigError
from encoderlab.models.bert import BertConfig, BertModel
from encoderlab.models.fusion import FUSION_MODES, FusionClassifier, FusionConfig
from encoderlab.models.tabular import TabularConfig, TabularEncoder


def tiny_bert(seed: int = 0) -> BertModel:
    torch.manual_seed(seed)
    return BertModel(BertConfig(vocab_size=50, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_positions=40,
                                dropout=0.0, attention_dropout=0.0, pooler=False)).eval()


def batch(n_cat: int = 2, n_num: int = 3, B: int = 4, T: int = 7):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 50, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 4:] = 0  # ragged: one padded row
    mask[3, 2:] = 0
    ids = ids * mask
    categories = torch.randint(0, 5, (B, n_cat), generator=g)
    numbers = torch.randn(B, n_num, generator=g)
    return ids, mask, categories, numbers


@pytest.mark.parametrize("kind", ["mlp", "ft"])
def test_tabular_encoder_shapes_and_gradients(kind):
    enc = TabularEncoder(TabularConfig(cardinalities=[5, 5], n_numeric=3, kind=kind, d_model=16, d_out=24,
                                       n_heads=2, d_ff=32))
    _, _, categories, numbers = batch()
    out = enc(categories, numbers)
    assert out.shape == (4, 24) and enc.tokens(categories, numbers).shape == (4, 5, 16)
    out.sum().backward()
    assert enc.tokenizer.number_weight.grad.abs().sum() > 0 and enc.tokenizer.categories.weight.grad.abs().sum() > 0
    # columns are told apart: the same id in two columns reads two different rows
    tokens = enc.tokens(torch.tensor([[1, 1]]), torch.zeros(1, 3))
    assert not torch.allclose(tokens[0, 0], tokens[0, 1])


def test_tabular_config_errors_say_what_to_change():
    with pytest.raises(ConfigError, match="not divisible by n_heads"):
        TabularConfig(kind="ft", d_model=10, n_heads=3)
    with pytest.raises(ConfigError, match="choose 'mlp' or 'ft'"):
        TabularConfig(kind="tree")
    with pytest.raises(ConfigError, match="needs a text encoder"):
        FusionClassifier(FusionConfig(mode="late"))


@pytest.mark.parametrize("mode", FUSION_MODES)
def test_every_mode_runs_forward_and_backward(mode):
    cfg = FusionConfig(mode=mode, n_classes=3, dropout=0.0,
                       tabular=TabularConfig(cardinalities=[5, 5], n_numeric=3, d_model=16, d_out=16, n_heads=2))
    model = FusionClassifier(cfg, tiny_bert() if mode != "tabular" else None)
    ids, mask, categories, numbers = batch()
    logits = model(ids, mask, categories, numbers)
    assert logits.shape == (4, 3)
    logits.logsumexp(-1).sum().backward()
    if mode not in ("text",):
        assert model.tabular.tokenizer.number_weight.grad.abs().sum() > 0  # the table reaches the output
    if mode not in ("tabular",):
        assert model.text.blocks[0].attn.query.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("mode", ["late", "gated", "early"])
@pytest.mark.parametrize("kind", ["mlp", "ft"])
def test_fusion_with_an_empty_table_equals_the_text_model(mode, kind):
    text_model = FusionClassifier(FusionConfig(mode="text", n_classes=3), tiny_bert()).eval()
    torch.manual_seed(5)
    empty = TabularConfig(cardinalities=[], n_numeric=0, kind=kind, d_model=16, d_out=16, n_heads=2)
    fused = FusionClassifier(FusionConfig(mode=mode, n_classes=3, tabular=empty), tiny_bert()).eval()
    with torch.no_grad():  # the fused head's text columns = the text head; its table columns stay random
        fused.head.weight[:, :32] = text_model.head.weight
        fused.head.bias.copy_(text_model.head.bias)
    ids, mask, _, _ = batch()
    no_categories, no_numbers = torch.zeros(4, 0, dtype=torch.long), torch.zeros(4, 0)
    with torch.no_grad():
        expected = text_model(ids, mask)
        got = fused(ids, mask, no_categories, no_numbers)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_early_fusion_lets_text_tokens_attend_to_the_table():
    cfg = FusionConfig(mode="early", n_classes=2, tabular=TabularConfig(cardinalities=[5, 5], n_numeric=3,
                                                                       d_model=16, n_heads=2))
    model = FusionClassifier(cfg, tiny_bert()).eval()
    ids, mask, categories, numbers = batch()
    with torch.no_grad():
        a = model.embed(ids, mask, categories, numbers)
        b = model.embed(ids, mask, categories, numbers + 1.0)
    assert (a - b).abs().max() > 1e-4  # another row of numbers changes the pooled vector
