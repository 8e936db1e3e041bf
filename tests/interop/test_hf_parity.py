"""Our encoder on the all-MiniLM-L6-v2 weights vs transformers.BertModel and sentence-transformers."""

import numpy as np
import pytest
import torch

from .varied_texts import varied_texts

TEXTS = varied_texts()


def test_enough_varied_inputs(minilm):
    assert len(TEXTS) >= 100
    lengths = [len(ids) for ids in minilm.tokenizer.encode_ids(TEXTS, 100_000)]
    assert max(lengths) > 512 and min(lengths) == 2  # something truncated; the empty string is [CLS] [SEP]


@torch.inference_mode()
@pytest.mark.slow
def test_last_hidden_states_match_transformers(minilm, hf_minilm):
    worst = 0.0
    for start in range(0, len(TEXTS), 16):
        batch = minilm.tokenizer(TEXTS[start:start + 16], max_length=512)
        ours = minilm(batch.input_ids, batch.attention_mask)
        ref = hf_minilm(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        real = batch.attention_mask.bool()
        worst = max(worst, (ours - ref)[real].abs().max().item())
    assert worst <= 1e-5, f"max-abs difference {worst:.2e} exceeds 1e-5"


@torch.inference_mode()
def test_reference_attention_path_also_matches_transformers(minilm, hf_minilm):
    batch = minilm.tokenizer(TEXTS[:32], max_length=128)
    for block in minilm.bert.blocks:
        block.attn.fused = False
    try:
        ours = minilm(batch.input_ids, batch.attention_mask)
    finally:
        for block in minilm.bert.blocks:
            block.attn.fused = True
    ref = hf_minilm(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
    real = batch.attention_mask.bool()
    assert (ours - ref)[real].abs().max().item() <= 1e-5


@pytest.mark.slow
def test_embeddings_match_sentence_transformers(minilm, minilm_dir):
    st = pytest.importorskip("sentence_transformers")
    reference = st.SentenceTransformer(str(minilm_dir), device="cpu")
    assert reference.max_seq_length == minilm.max_seq_length == 256
    expected = reference.encode(TEXTS, batch_size=16, convert_to_numpy=True)
    ours = minilm.encode(TEXTS, batch_size=16)
    assert ours.dtype == np.float32 and ours.shape == (len(TEXTS), 384)
    cosine = (ours * expected).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() >= 0.99999, f"worst cosine {cosine.min():.7f} at {TEXTS[int(cosine.argmin())]!r:.60}"
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
