import numpy as np
import pytest
import torch

from encoderlab import InputDataError, TextEncoder
from encoderlab.text_encoder import sentence_transformers_defaults

TEXTS = ["short", "a considerably longer sentence that needs more tokens than the others", "", "中文句子",
         "mid size text"]


def test_defaults_come_from_sentence_transformers_files(minilm, minilm_dir):
    assert sentence_transformers_defaults(minilm_dir) == {
        "max_seq_length": 256, "do_lower_case": False, "normalize": True, "pooling": "mean"}
    assert not minilm.training and not minilm.bert.training


def test_order_is_kept_whatever_the_batching(minilm):
    together = minilm.encode(TEXTS, batch_size=32)
    one_by_one = np.stack([minilm.encode([t], batch_size=1)[0] for t in TEXTS])
    np.testing.assert_allclose(together, one_by_one, atol=2e-6)
    np.testing.assert_allclose(minilm.encode(TEXTS, batch_size=2), together, atol=2e-6)


def test_pooling_and_normalize_options(minilm):
    batch = minilm.tokenizer(["pooling check"], max_length=256)
    with torch.inference_mode():
        hidden = minilm(batch.input_ids, batch.attention_mask)[0]
    np.testing.assert_allclose(minilm.encode(["pooling check"], pooling="cls", normalize=False)[0],
                               hidden[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(minilm.encode(["pooling check"], pooling="max", normalize=False)[0],
                               hidden.max(0).values.numpy(), atol=1e-6)
    raw = minilm.encode(["pooling check"], normalize=False)[0]
    np.testing.assert_allclose(raw, hidden.mean(0).numpy(), atol=1e-6)
    assert abs(np.linalg.norm(raw) - 1.0) > 0.01  # not normalised
    assert abs(np.linalg.norm(minilm.encode(["pooling check"])[0]) - 1.0) < 1e-5


def test_similarity_ranks_paraphrase_above_unrelated(minilm):
    sim = minilm.similarity(["A man is playing a guitar.", "Someone plays the guitar.", "Stocks fell today."])
    assert sim.shape == (3, 3)
    np.testing.assert_allclose(np.diag(sim), 1.0, atol=1e-5)
    assert sim[0, 1] > 0.5 > sim[0, 2]


def test_max_length_truncates(minilm):
    long = "word " * 400
    assert not np.allclose(minilm.encode([long], max_length=8), minilm.encode([long]))
    np.testing.assert_allclose(minilm.encode([long], max_length=8), minilm.encode(["word " * 6]), atol=1e-6)


def test_empty_list_and_single_string(minilm):
    assert minilm.encode([]).shape == (0, 384)
    assert minilm.encode("one text").shape == (1, 384)


@pytest.mark.parametrize("bad,message", [
    (["fine", 3], r"texts\[1\] is int"),
    (["fine", None], r"texts\[1\] is NoneType"),
    (42, "texts must be a list of strings"),
])
def test_non_string_input_is_a_clear_error(minilm, bad, message):
    with pytest.raises(InputDataError, match=message):
        minilm.encode(bad)


def test_bad_options(minilm):
    with pytest.raises(ValueError, match="pooling='median' is unknown"):
        minilm.encode(["x"], pooling="median")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        minilm.encode(["x"], batch_size=0)


def test_encode_keeps_a_training_model_in_training_mode(minilm_dir):
    model = TextEncoder.from_pretrained(minilm_dir).train()
    model.encode(["x"])
    assert model.training and model.bert.training
