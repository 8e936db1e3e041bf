import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from encoderlab import BertConfig, BertModel, ConfigError

from .packing_parity import assert_packed_equals_padded

TINY = dict(vocab_size=101, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_positions=24)


@pytest.mark.parametrize(
    "norm_position,positions,ffn_kind,fused",
    list(itertools.product(["post", "pre"], ["learned", "sinusoidal", "rotary"], ["mlp", "glu"], [True, False])),
)
def test_every_variant_runs_forward_and_backward(norm_position, positions, ffn_kind, fused):
    torch.manual_seed(0)
    cfg = BertConfig(**TINY, norm_position=norm_position, positions=positions, ffn_kind=ffn_kind,
                     fused_attention=fused)
    model = BertModel(cfg)
    ids = torch.randint(1, 101, (3, 10))
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    hidden = model(ids, mask)
    assert hidden.shape == (3, 10, 32)
    assert torch.isfinite(hidden).all()
    hidden[mask.bool()].pow(2).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads[:-2])  # pooler unused here


def test_fused_and_reference_models_agree_with_padding():
    torch.manual_seed(0)
    fast = BertModel(BertConfig(**TINY)).eval()
    slow = BertModel(BertConfig(**TINY, fused_attention=False)).eval()
    slow.load_state_dict(fast.state_dict())
    ids = torch.randint(1, 101, (4, 12))
    mask = (torch.arange(12)[None, :] < torch.tensor([[12], [5], [1], [9]])).long()
    real = mask.bool()
    torch.testing.assert_close(fast(ids, mask)[real], slow(ids, mask)[real], atol=1e-5, rtol=1e-5)


def test_padding_tokens_do_not_change_real_outputs():
    torch.manual_seed(0)
    model = BertModel(BertConfig(**TINY)).eval()
    ids = torch.randint(1, 101, (1, 6))
    alone = model(ids, torch.ones_like(ids))
    padded_ids = torch.cat([ids, torch.randint(1, 101, (1, 4))], dim=1)
    padded_mask = torch.tensor([[1] * 6 + [0] * 4])
    torch.testing.assert_close(model(padded_ids, padded_mask)[:, :6], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_learns_to_copy_a_token_through_attention():
    """A real learning check: predict the first token's id at every position (needs attention to work)."""
    torch.manual_seed(0)
    cfg = BertConfig(**{**TINY, "vocab_size": 20}, dropout=0.0, attention_dropout=0.0, norm_position="pre")
    model = BertModel(cfg)
    head = torch.nn.Linear(32, 20)
    opt = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=3e-3)
    for _ in range(150):
        ids = torch.randint(1, 20, (32, 8))
        logits = head(model(ids))  # (B, T, V)
        loss = torch.nn.functional.cross_entropy(logits[:, 1:].reshape(-1, 20), ids[:, :1].expand(-1, 7).reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    ids = torch.randint(1, 20, (64, 8))
    accuracy = (head(model(ids))[:, 1:].argmax(-1) == ids[:, :1]).float().mean()
    assert accuracy > 0.9


@pytest.mark.parametrize(
    "overrides,message",
    [
        (dict(d_model=30, n_heads=4), "not divisible by n_heads"),
        (dict(dropout=1.5), "dropout must be in"),
        (dict(activation="swishy"), "activation='swishy' is unknown"),
        (dict(norm_position="middle"), "norm_position"),
        (dict(n_layers=0), "n_layers must be >= 1"),
        (dict(pad_token_id=500), "outside the vocabulary"),
    ],
)
def test_invalid_configs_say_what_to_fix(overrides, message):
    with pytest.raises(ConfigError, match=message):
        BertConfig(**{**TINY, **overrides})


@settings(max_examples=30, deadline=None)
@given(d_model=st.integers(1, 128), n_heads=st.integers(1, 16))
def test_head_divisibility_is_checked_for_any_shape(d_model, n_heads):
    if d_model % n_heads == 0:
        assert BertConfig(**{**TINY, "d_model": d_model, "n_heads": n_heads}).d_head == d_model // n_heads
    else:
        with pytest.raises(ConfigError):
            BertConfig(**{**TINY, "d_model": d_model, "n_heads": n_heads})


@pytest.mark.parametrize("norm_position", ["post", "pre"])
def test_unpadded_path_equals_padded_path_forward_and_backward(norm_position):
    torch.manual_seed(0)
    padded = BertModel(BertConfig(**TINY, norm_position=norm_position, unpad=False, dropout=0.0,
                                  attention_dropout=0.0))
    packed = BertModel(BertConfig(**TINY, norm_position=norm_position, unpad=True, dropout=0.0,
                                  attention_dropout=0.0))
    packed.load_state_dict(padded.state_dict())
    ids = torch.randint(1, 101, (4, 12))
    segments = torch.randint(0, 2, (4, 12))
    mask = (torch.arange(12)[None, :] < torch.tensor([[12], [5], [1], [9]])).long()
    out_packed = assert_packed_equals_padded(packed, padded, ids, mask, segments)
    assert (out_packed[~mask.bool()] == 0).all()  # padded positions are zeros, not garbage


def test_unpadded_path_handles_an_all_padding_row():
    torch.manual_seed(0)
    model = BertModel(BertConfig(**TINY)).eval()
    ids = torch.randint(1, 101, (2, 6))
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    out = model(ids, mask)
    assert torch.isfinite(out).all() and (out[1] == 0).all()
    torch.testing.assert_close(out[0, :3], model(ids[:1, :3])[0], atol=1e-5, rtol=1e-5)


def test_per_layer_sizes_build_narrower_blocks():
    model = BertModel(BertConfig(**TINY, layer_heads=[4, 1], layer_d_ff=[64, 10]))
    attn, ffn = model.blocks[1].attn, model.blocks[1].ffn
    assert (attn.n_heads, attn.d_head) == (1, 8)  # d_head stays d_model // n_heads
    assert attn.query.weight.shape == (8, 32) and attn.out.weight.shape == (32, 8)
    assert ffn.up.weight.shape == (10, 32) and ffn.down.weight.shape == (32, 10)
    assert model.blocks[0].attn.query.weight.shape == (32, 32)
    ids = torch.randint(1, 101, (2, 7))
    assert model(ids, torch.ones_like(ids)).shape == (2, 7, 32)
    default = BertModel(BertConfig(**TINY))
    assert [b.attn.n_heads for b in default.blocks] == [4, 4] and default.cfg.layer_heads is None


@pytest.mark.parametrize("overrides,message", [
    (dict(layer_heads=[4]), "layer_heads has 1 entries but n_layers=2"),
    (dict(layer_heads=[4, 0]), "cannot lose all its heads"),
    (dict(layer_heads=[4, 5]), r"\[1, n_heads=4\]"),
    (dict(layer_d_ff=[64, 0]), "layer_d_ff=\\[64, 0\\]: every entry must be >= 1"),
])
def test_invalid_per_layer_sizes_say_what_to_fix(overrides, message):
    with pytest.raises(ConfigError, match=message):
        BertConfig(**{**TINY, **overrides})


@pytest.mark.parametrize("fused", [True, False])
def test_unpadded_path_equals_padded_path_with_per_layer_sizes(fused):
    torch.manual_seed(0)
    sizes = dict(layer_heads=[3, 1], layer_d_ff=[17, 64], dropout=0.0, attention_dropout=0.0, fused_attention=fused)
    padded = BertModel(BertConfig(**TINY, **sizes, unpad=False))
    packed = BertModel(BertConfig(**TINY, **sizes, unpad=True))
    packed.load_state_dict(padded.state_dict())
    ids = torch.randint(1, 101, (3, 9))
    mask = (torch.arange(9)[None, :] < torch.tensor([[9], [4], [6]])).long()
    real = mask.bool()
    torch.testing.assert_close(packed(ids, mask)[real], padded(ids, mask)[real], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm_position", ["post", "pre"])
def test_rotary_model_packed_path_equals_padded_path(norm_position):
    torch.manual_seed(0)
    cfg = BertConfig(**TINY, positions="rotary", norm_position=norm_position, dropout=0.0, attention_dropout=0.0)
    packed, padded = BertModel(cfg), BertModel(BertConfig(**{**cfg.__dict__, "unpad": False}))
    padded.load_state_dict(packed.state_dict())
    ids = torch.randint(1, 101, (4, 12))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[3, :5] = 0  # left-padded too
    assert_packed_equals_padded(packed, padded, ids, mask)


@pytest.mark.parametrize("unpad", [True, False])
def test_rotary_model_sees_only_relative_positions(unpad):
    """With rotary positions and no position table, shifting a sequence right by some padding columns
    leaves its outputs unchanged: attention only sees offsets between tokens. Learned positions do not."""
    torch.manual_seed(0)
    ids = torch.randint(1, 101, (1, 9))
    right = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], 1)
    left = torch.cat([torch.zeros(1, 4, dtype=torch.long), ids], 1)
    mask_right, mask_left = (right != 0).long(), (left != 0).long()
    outputs = {}
    for positions in ("rotary", "learned"):
        model = BertModel(BertConfig(**TINY, positions=positions, n_segments=0, unpad=unpad)).eval()
        with torch.no_grad():
            outputs[positions] = model(right, mask_right)[0, :9], model(left, mask_left)[0, 4:]
    torch.testing.assert_close(*outputs["rotary"], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(*outputs["learned"], atol=1e-3)


def test_rotary_needs_an_even_head_width():
    with pytest.raises(ConfigError, match="even head width"):
        BertConfig(**{**TINY, "d_model": 36, "n_heads": 4}, positions="rotary")


# ------------------------------------------------------------------ position numbering (RoBERTa's and BERT's)
ROBERTA_LIKE = dict(TINY, pad_token_id=1, position_numbering="non_padding", position_offset=2, n_segments=1)


def _roberta_position_ids(input_ids, padding_idx):
    """transformers' RobertaEmbeddings.create_position_ids_from_input_ids, written out as the reference."""
    mask = input_ids.ne(padding_idx).int()
    return (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + padding_idx


def _padded_both_sides(pad):
    ids = torch.randint(3, 101, (4, 10))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0  # right-padded
    mask[2, :4] = 0  # left-padded
    mask[3, :2] = 0  # left-padded and a pad id inside the text, as a literal "<pad>" would be
    ids[3, 5] = pad
    return ids.masked_fill(mask == 0, pad), mask


def test_non_padding_numbering_equals_robertas_position_ids():
    model = BertModel(BertConfig(**ROBERTA_LIKE))
    ids, _ = _padded_both_sides(pad=1)
    assert torch.equal(model.embeddings.position_ids(ids), _roberta_position_ids(ids, 1))
    assert model.embeddings.positions.weight.shape == (24 + 2, 32)  # max_positions real rows after the offset
    column = BertModel(BertConfig(**TINY))
    assert torch.equal(column.embeddings.position_ids(ids), torch.arange(10)[None])


@pytest.mark.parametrize("fused", [True, False])
def test_non_padding_numbering_packed_equals_padded(fused):
    torch.manual_seed(0)
    cfg = BertConfig(**ROBERTA_LIKE, dropout=0.0, attention_dropout=0.0, fused_attention=fused)
    packed, padded = BertModel(cfg), BertModel(BertConfig(**{**cfg.__dict__, "unpad": False}))
    padded.load_state_dict(packed.state_dict())
    ids, mask = _padded_both_sides(pad=1)
    assert_packed_equals_padded(packed, padded, ids, mask)


@pytest.mark.parametrize("unpad", [True, False])
def test_non_padding_numbering_makes_left_padding_harmless(unpad):
    """A sequence left-padded reads the same position rows as alone; by column (BERT) it does not."""
    torch.manual_seed(0)
    ids = torch.randint(3, 101, (1, 7))
    left = torch.cat([torch.ones(1, 3, dtype=torch.long), ids], 1)
    mask = (left != 1).long()
    for cfg, same in ((BertConfig(**ROBERTA_LIKE, unpad=unpad), True),
                      (BertConfig(**{**TINY, "pad_token_id": 1}, unpad=unpad), False)):
        model = BertModel(cfg).eval()
        with torch.no_grad():
            alone, shifted = model(ids)[0], model(left, mask)[0, 3:]
        assert torch.allclose(alone, shifted, atol=1e-5) == same


def test_position_offset_counts_against_the_table_not_the_sequence():
    model = BertModel(BertConfig(**ROBERTA_LIKE)).eval()
    ids = torch.randint(3, 101, (2, 24))  # max_positions tokens: the last reads row 25 of 26
    assert model(ids).shape == (2, 24, 32)
    with pytest.raises(ValueError, match="sequence length 25 exceeds max_positions=24"):
        model(torch.randint(3, 101, (2, 25)))


@pytest.mark.parametrize("overrides,message", [
    (dict(position_numbering="middle"), "position_numbering must be 'column' or 'non_padding'"),
    (dict(position_offset=-1), "position_offset must be >= 0"),
    (dict(position_numbering="non_padding"), "position_offset must be >= 1"),
    (dict(positions="rotary", position_offset=2), "rotary positions are relative"),
    (dict(hf_model_type="gpt2"), "hf_model_type='gpt2' is unknown"),
    (dict(hf_model_type="roberta", pad_token_id=1), "needs .*'position_numbering': 'non_padding'"),
    (dict(hf_model_type="distilbert"), "needs \\{'n_segments': 0"),
    (dict(hf_model_type="distilbert", n_segments=0, norm_position="pre"), "use hf_model_type='bert'"),
])
def test_invalid_position_and_layout_settings_say_what_to_fix(overrides, message):
    with pytest.raises(ConfigError, match=message):
        BertConfig(**{**TINY, **overrides})
