import threading

import numpy as np
import pytest
import torch

from encoderlab import InputDataError, TextEncoder
from encoderlab.artifacts.text_encoder import sentence_transformers_defaults
from encoderlab.sharding import deal_rows

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


def test_encode_turns_off_dropout_even_when_only_an_inner_module_is_training(minilm_dir):
    model = TextEncoder.from_pretrained(minilm_dir)
    reference = model.encode(TEXTS)
    model.bert.train()  # the wrapper itself still says eval; dropout (p=0.1 in minilm) is on inside
    assert not model.training and model.bert.cfg.dropout > 0
    np.testing.assert_allclose(model.encode(TEXTS), reference, atol=1e-6)


# ------------------------------------------------------------------------------------ sharded batches
SHARD_TEXTS = [("word " * n).strip() for n in (3, 40, 7, 90, 1, 25, 60, 12, 5, 33, 18)] + TEXTS


def test_deal_rows_balances_lengths_and_keeps_every_row_once():
    rows = np.arange(10)[::-1]  # length-sorted rows, longest first
    parts = deal_rows(rows, 3)
    assert [p.tolist() for p in parts] == [[9, 4, 3], [8, 5, 2], [7, 6, 1, 0]]
    assert sorted(np.concatenate(parts).tolist()) == list(range(10))
    assert [p.tolist() for p in deal_rows(np.array([4, 2]), 3)] == [[4], [2]]  # never an empty part


@pytest.mark.parametrize("batch_size", [4, 32])
@pytest.mark.parametrize("shards", [2, 3])
def test_sharded_encode_equals_one_shard_in_input_order(minilm, batch_size, shards):
    threads = torch.get_num_threads()
    one = minilm.encode(SHARD_TEXTS, batch_size=batch_size, shards=1)
    sharded = minilm.encode(SHARD_TEXTS, batch_size=batch_size, shards=shards)
    np.testing.assert_allclose(sharded, one, rtol=0, atol=1e-5)
    assert torch.get_num_threads() == threads


def test_sharded_bf16_matches_one_shard(minilm):
    one = minilm.encode(SHARD_TEXTS, precision="bf16", shards=1)
    sharded = minilm.encode(SHARD_TEXTS, precision="bf16", shards=2)
    assert (one * sharded).sum(1).min() > 0.9999  # both normalised: cosines


def test_thread_count_is_restored_after_sharding_and_after_errors(minilm_dir, monkeypatch):
    model = TextEncoder.from_pretrained(minilm_dir)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        model.encode(SHARD_TEXTS, shards=2)
        assert torch.get_num_threads() == 1

        def broken(*args, **kwargs):
            raise RuntimeError("boom in a shard")

        monkeypatch.setattr(model.bert, "forward", broken)
        with pytest.raises(RuntimeError, match="boom in a shard"):
            model.encode(SHARD_TEXTS, batch_size=4, shards=2)
        assert torch.get_num_threads() == 1
        assert not model.training
    finally:
        torch.set_num_threads(threads)


def test_auto_shards_follow_threads_device_and_hooks(minilm):
    cpu = torch.device("cpu")
    expected = torch.get_num_threads() if torch.backends.openmp.is_available() else 1
    assert minilm.resolve_shards("auto", cpu) == expected
    assert minilm.resolve_shards("auto", torch.device("cuda")) == 1
    seen = set()
    handle = minilm.bert.blocks[0].register_forward_hook(lambda *args: seen.add(threading.get_ident()))
    try:
        assert minilm.resolve_shards("auto", cpu) == 1  # hooks see one batch at a time, in this thread
        minilm.encode(SHARD_TEXTS, batch_size=4)
        assert seen == {threading.get_ident()}
    finally:
        handle.remove()


@pytest.mark.parametrize("shards", [0, "two", True, 1.5])
def test_bad_shards_are_a_clear_error(minilm, shards):
    with pytest.raises(ValueError, match="shards="):
        minilm.encode(["x"], shards=shards)


def test_shards_on_a_gpu_model_are_refused(minilm):
    with pytest.raises(ValueError, match="use shards=1"):
        minilm.resolve_shards(2, torch.device("cuda"))


@pytest.mark.skipif(not torch.backends.openmp.is_available(), reason="auto shards need per-thread thread counts")
def test_auto_shards_split_only_batches_worth_it(minilm_dir, monkeypatch):
    model = TextEncoder.from_pretrained(minilm_dir)
    forward, seen = model.bert.forward, []

    def recorded(input_ids, *args):
        seen.append((threading.get_ident(), input_ids.shape[0]))
        return forward(input_ids, *args)

    monkeypatch.setattr(model.bert, "forward", recorded)  # not a hook: auto shards stay on
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        model.encode(["a short text", "another one"])  # 10 tokens: one part, in this thread
        assert seen == [(threading.get_ident(), 2)]
        seen.clear()
        long = [("word " * n).strip() for n in (200, 180, 150, 120)]  # ~650 tokens: two parts of two texts
        model.encode(long)
        assert sorted(size for _, size in seen) == [2, 2]
        assert threading.get_ident() not in {ident for ident, _ in seen}
    finally:
        torch.set_num_threads(threads)


LONG = ("The committee met on Tuesday to discuss the budget. Members argued about the cost of new roads, the "
        "schools and the hospital, and in the end they agreed to delay the vote until the spring. ") * 3


def test_chunked_encoding_reads_the_whole_text(minilm):
    from encoderlab.artifacts.text_encoder import text_windows
    from encoderlab.nn.windows import LongText

    short = ["short", "mid size text", ""]
    # a text that fits in one window gets exactly the truncated vector
    np.testing.assert_array_equal(minilm.encode(short + [LONG], max_length=32, long_text="chunk")[:3],
                                  minilm.encode(short, max_length=32))
    chunked = minilm.encode([LONG, "short"], max_length=32, long_text="chunk", stride=20, shards=1)
    windows, counts = text_windows(minilm.tokenizer, [LONG], LongText("chunk", 32, 20))
    assert counts[0] == len(windows) > 3 and all(len(w) <= 32 for w in windows)
    batch = minilm.tokenizer.pad(windows)
    with torch.inference_mode():
        hidden = minilm(batch.input_ids, batch.attention_mask)
    mask = batch.attention_mask[..., None].float()
    per_window = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1)
    expected = torch.nn.functional.normalize(per_window.mean(0), dim=0)
    np.testing.assert_allclose(chunked[0], expected.numpy(), atol=1e-5)
    truncated = minilm.encode([LONG], max_length=32)[0]
    assert float(chunked[0] @ truncated) < 0.999  # reading on changes the vector
    maxed = minilm.encode([LONG], max_length=32, long_text="chunk", stride=20, window_pooling="max", shards=1)[0]
    np.testing.assert_allclose(maxed, torch.nn.functional.normalize(per_window.amax(0), dim=0).numpy(), atol=1e-5)


def test_chunked_encoding_options_are_checked(minilm):
    from encoderlab.errors import ConfigError

    with pytest.raises(ConfigError, match="stride=31 must be between 1 and window - 2 = 30"):
        minilm.encode([LONG], max_length=32, long_text="chunk", stride=31)
    with pytest.raises(ConfigError, match="long_text='pages' is unknown"):
        minilm.encode([LONG], long_text="pages")
    with pytest.raises(ValueError, match="needs learned weights"):
        minilm.encode([LONG], long_text="chunk", window_pooling="attention")


def test_bf16_stays_close_to_fp32_and_follows_fine_tuning(minilm_dir):
    model = TextEncoder.from_pretrained(minilm_dir)
    fp32 = model.encode(SHARD_TEXTS, shards=1)
    bf16 = model.encode(SHARD_TEXTS, precision="bf16", shards=1)
    assert (fp32 * bf16).sum(1).min() > 0.999  # the bf16 contract: worst cosine >= 0.999
    with torch.no_grad():  # a training step changes the weights in place: bf16 must see the new ones
        model.bert.blocks[0].ffn.up.weight.mul_(-1)
    changed = model.encode(SHARD_TEXTS, precision="bf16", shards=1)
    assert (changed * model.encode(SHARD_TEXTS, shards=1)).sum(1).min() > 0.999
    assert (changed * bf16).sum(1).min() < 0.99


def test_a_corpus_runs_whole_batches_side_by_side(minilm, monkeypatch):
    import encoderlab.artifacts.text_encoder as module

    texts = SHARD_TEXTS * 3
    seen: list[int] = []
    real = module.run_parts
    monkeypatch.setattr(module, "run_parts", lambda work, parts, shards, on_done: seen.extend(map(len, parts))
                        or real(work, parts, shards, on_done))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        many = minilm.encode(texts, batch_size=2)  # >= WHOLE_BATCHES_FROM batches per shard: none is split
        assert set(seen[:-1]) == {2} and len(seen) == -(-len(texts) // 2)
        seen.clear()
        minilm.encode([("word " * 200).strip()] * 4, batch_size=4)  # one batch: dealt across the two cores
        assert seen == [2, 2] or minilm.resolve_shards() == 1
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_allclose(many, minilm.encode(texts, batch_size=2, shards=1), rtol=0, atol=1e-5)


def test_bf16_without_native_support_falls_back_to_autocast(minilm, monkeypatch):
    """AVX2-only CPUs: no bf16 twin (its matmuls would be emulated); autocast as before, same contract, and a
    warning that fp32 is the faster choice there."""
    import encoderlab.artifacts.text_encoder as module

    monkeypatch.setattr(module, "bf16_matmul_native", lambda: False)
    monkeypatch.setattr(type(minilm._bf16), "of", lambda self, m: pytest.fail("the twin is for native bf16 only"))
    fp32 = minilm.encode(SHARD_TEXTS)
    with pytest.warns(UserWarning, match="emulates it"):
        bf16 = minilm.encode(SHARD_TEXTS, precision="bf16")
    assert (fp32 * bf16).sum(1).min() > 0.999
