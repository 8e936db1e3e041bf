"""The Transformer encoder-decoder: the decoder never peeks at later target tokens, cached decoding equals
recomputing the whole prefix, beam width 1 is greedy, padding never changes a result, fused attention equals
the reference path, and a tiny model trains (forward and backward through every parameter)."""

import pytest
import torch

from encoderlab.errors import ConfigError
from encoderlab.models.decoding import BOS, EOS, PAD, length_penalty
from encoderlab.models.recurrent import sequence_loss
from encoderlab.models.transformer_seq2seq import TransformerSeq2Seq, TransformerSeq2SeqConfig

torch.set_num_threads(1)


def config(**overrides) -> TransformerSeq2SeqConfig:
    fields = {"source_vocab_size": 13, "target_vocab_size": 11, "d_model": 16, "n_heads": 2, "d_ff": 32,
              "n_encoder_layers": 2, "n_decoder_layers": 2, "max_positions": 40, "dropout": 0.0,
              "attention_dropout": 0.0} | overrides
    return TransformerSeq2SeqConfig(**fields)


def model_of(seed=0, **overrides) -> TransformerSeq2Seq:
    torch.manual_seed(seed)
    model = TransformerSeq2Seq(config(**overrides)).eval()
    with torch.no_grad():  # a trained model's weights are not tiny: make the outputs depend on the input
        for p in model.parameters():
            p.mul_(8.0) if p.dim() > 1 else None
    return model


def batch(lengths, vocab, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    out = torch.full((len(lengths), max(lengths)), PAD, dtype=torch.long)
    for i, n in enumerate(lengths):
        out[i, :n] = torch.randint(4, vocab, (n,), generator=g)
    return out


@pytest.mark.parametrize("norm_position", ["pre", "post"])
def test_the_decoder_does_not_peek_at_later_target_tokens(norm_position):
    model = model_of(norm_position=norm_position)
    source = batch([7, 4, 6], 13)
    target = torch.cat([torch.full((3, 1), BOS), batch([9, 9, 9], 11, seed=1)], dim=1)  # (3, 10)
    changed = target.clone()
    changed[:, 6:] = batch([4, 4, 4], 11, seed=2)  # every token from position 6 on is different
    a, b = model(source, target), model(source, changed)
    assert torch.allclose(a[:, :6], b[:, :6], atol=1e-5)  # positions 0-5 saw only tokens 0-5
    assert not torch.allclose(a[:, 6:], b[:, 6:], atol=1e-3)  # the later ones did change


def test_cached_step_by_step_decoding_equals_recomputing_the_prefix():
    model = model_of()
    source = batch([5, 8, 2], 13)
    target = torch.cat([torch.full((3, 1), BOS), batch([7, 7, 7], 11, seed=3)], dim=1)  # (3, 8)
    full = model(source, target)  # (3, 8, V): teacher-forced, all positions at once
    state = model.start(source)
    for t in range(target.shape[1]):
        logits, state = model.step(target[:, t], state)
        uncached = model(source, target[:, :t + 1])[:, -1]  # the whole prefix recomputed
        assert torch.allclose(logits, uncached, atol=1e-5), t
        assert torch.allclose(logits, full[:, t], atol=1e-5), t
    assert state.past[0][0].shape == (3, 2, 8, 8) and state.position == 8  # (B, nh, t, hs) keys of block 0
    # a block of several new positions after a cached prefix (the causal mask offset by the cache)
    state = model.start(source)
    first, state = model.decode(target[:, :3], state)
    rest, _ = model.decode(target[:, 3:], state)
    assert torch.allclose(torch.cat([first, rest], 1), full, atol=1e-5)


def test_padding_changes_nothing_and_fused_attention_equals_reference():
    model = model_of()
    source = batch([6, 3], 13)
    target = torch.cat([torch.full((2, 1), BOS), batch([5, 5], 11, seed=4)], dim=1)
    together = model(source, target)
    for i, n in enumerate([6, 3]):  # each alone, without padding
        assert torch.allclose(together[i], model(source[i:i + 1, :n], target[i:i + 1])[0], atol=1e-5)
    reference = model_of(fused_attention=False)
    assert torch.allclose(reference(source, target), together, atol=1e-5)


def test_beam_of_one_is_greedy_and_the_length_penalty_is_gnmts():
    model = model_of()
    source = batch([6, 3, 8, 1, 5], 13, seed=5)
    greedy = model.greedy(source, 12)
    assert greedy == model.beam_search(source, 12, beam_size=1)
    assert greedy == model.beam_search(source, 12, beam_size=1, length_penalty=1.0)
    assert len({len(g) for g in greedy}) > 1 and all(PAD not in g and BOS not in g and EOS not in g for g in greedy)
    beams = model.beam_search(source, 12, beam_size=4)
    assert len(beams) == 5 and beams != [[]] * 5
    assert length_penalty(torch.tensor([1, 7]), 1.0).tolist() == [1.0, 2.0]
    assert length_penalty(torch.tensor([3]), 0.0).item() == 1.0


def test_a_wider_beam_never_scores_worse_than_greedy():
    model = model_of(seed=1)
    source = batch([4, 7, 5, 6], 13, seed=6)

    def log_prob(src, out):
        target = torch.tensor([[BOS, *out]])
        logp = model(src[None], target).log_softmax(-1)[0]
        ids = [*out, EOS]
        return sum(float(logp[t, i]) for t, i in enumerate(ids))

    for src, g, b in zip(source, model.greedy(source, 30), model.beam_search(source, 30, beam_size=6), strict=True):
        src = src[src != PAD]
        if len(g) < 30 and len(b) < 30:  # both finished with EOS
            assert log_prob(src, b) >= log_prob(src, g) - 1e-4


def test_shared_embeddings_tie_one_table_and_everything_trains():
    torch.manual_seed(0)
    model = TransformerSeq2Seq(config(target_vocab_size=13, share_embeddings=True))
    assert model.embeddings.tokens.weight is model.encoder.embeddings.tokens.weight
    assert model.tied_names() == {"embeddings.tokens.weight"}
    source, target = batch([5, 3], 13), batch([4, 6], 13, seed=7)
    target_in = torch.cat([torch.full((2, 1), BOS), target], 1)
    target_out = torch.cat([target, torch.zeros(2, 1, dtype=torch.long)], 1)
    target_out[0, 4], target_out[1, 6] = EOS, EOS
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    model.train()
    for _ in range(60):
        loss = sequence_loss(model(source, target_in), target_out)
        opt.zero_grad()
        loss.backward()
        losses.append(loss.item())
        opt.step()
    assert losses[-1] < 0.3 * losses[0]
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert no_grad == []
    with pytest.raises(ConfigError, match="share_embeddings"):
        config(share_embeddings=True)  # 13 source vs 11 target tokens
    with pytest.raises(ConfigError, match="divisible"):
        config(n_heads=3)
