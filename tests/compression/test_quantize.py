import numpy as np
import pytest
import torch

from encoderlab import ConfigError, InputDataError
from encoderlab.compression.quantize import (
    SmoothQuantLinear,
    embedding_agreement,
    quantize_int8,
    resolve_int8_kernel,
)
from encoderlab.nn.int8_feedforward import Int8FeedForward, onednn_int8_available
from encoderlab.nn.mlp import FeedForward
from interop.varied_texts import varied_texts

pytestmark = pytest.mark.slow  # the fixtures of this file take many seconds; `make test-fast` skips it

TEXTS = varied_texts()
CALIBRATION, HELD_OUT = TEXTS[::2], TEXTS[1::2]  # calibrate on one half, judge on the other


needs_onednn = pytest.mark.skipif(not onednn_int8_available(), reason="this PyTorch has no oneDNN int8 ops")


@pytest.fixture(scope="module")
def int8_minilm(minilm):
    return quantize_int8(minilm, CALIBRATION, kernel="fbgemm")


@pytest.fixture(scope="module")
def onednn_minilm(minilm):
    return quantize_int8(minilm, CALIBRATION, kernel="onednn")


def test_int8_embeddings_stay_close_on_held_out_texts(minilm, int8_minilm):
    agreement = embedding_agreement(minilm, int8_minilm, HELD_OUT)
    assert agreement.mean_cosine >= 0.99 and agreement.min_cosine >= 0.97, agreement


@needs_onednn
def test_onednn_int8_keeps_the_accuracy_contract_too(minilm, onednn_minilm):
    agreement = embedding_agreement(minilm, onednn_minilm, HELD_OUT)
    assert agreement.mean_cosine >= 0.99 and agreement.min_cosine >= 0.97, agreement
    sharded = onednn_minilm.encode(HELD_OUT, shards=2)  # the int8 model runs in several threads, and its bf16
    np.testing.assert_allclose(sharded, onednn_minilm.encode(HELD_OUT, shards=1), atol=2e-2)
    twin = onednn_minilm.encode(HELD_OUT, precision="bf16")  # twin is a copy holding the int8 layers too
    assert (twin * onednn_minilm.encode(HELD_OUT)).sum(1).min() > 0.999


@needs_onednn
def test_onednn_int8_quantizes_feed_forwards_and_holds_the_rest_in_bf16(minilm, onednn_minilm):
    blocks = onednn_minilm.bert.blocks
    assert all(isinstance(block.ffn, Int8FeedForward) for block in blocks)
    assert {p.dtype for p in onednn_minilm.bert.parameters()} == {torch.bfloat16}
    assert all(isinstance(block.ffn, FeedForward) for block in minilm.bert.blocks)  # the original is untouched
    assert {p.dtype for p in minilm.bert.parameters()} == {torch.float32}
    assert resolve_int8_kernel("fbgemm") == "fbgemm"
    assert resolve_int8_kernel(None, keep_fp32=("ffn.down",)) == "fbgemm"  # fp32 kept means fp32
    with pytest.raises(ConfigError, match="kernel='avx9' is unknown"):
        resolve_int8_kernel("avx9")


@needs_onednn
@pytest.mark.parametrize("activation", ["gelu", "relu", "silu"])
def test_int8_feedforward_matches_the_float_one_closely(activation):
    torch.manual_seed(0)
    ffn = FeedForward(64, 256, activation).eval()
    x = torch.randn(200, 64)
    x[:, 5] *= 30  # an outlier channel, which the smoothing moves into the weights
    with torch.no_grad():
        hidden = ffn.act(ffn.up(x))
        expected = ffn(x)
    # the whole hidden range: random activations are not heavy-tailed like a trained model's, where the
    # default (half the calibrated range) trades rare clipping for resolution
    int8 = Int8FeedForward(ffn, x.abs().amax(0), hidden.abs().amax(0), hidden_range=1.0)
    for dtype in (torch.float32, torch.bfloat16):
        got = int8(x.to(dtype)[None])  # (1, N, C) keeps its shape and dtype
        assert got.shape == (1, 200, 64) and got.dtype == dtype
        rel = (got[0].float() - expected).norm() / expected.norm()
        assert rel < 0.03, (dtype, rel)
    copied = __import__("copy").deepcopy(int8)  # its packed weights are a cache, rebuilt after a copy
    torch.testing.assert_close(copied(x), int8(x))


def test_every_encoder_linear_is_int8_and_the_original_is_untouched(minilm, int8_minilm):
    replaced = [m for m in int8_minilm.bert.modules() if isinstance(m, SmoothQuantLinear)]  # kernel="fbgemm"
    assert len(replaced) == 6 * 6  # q, k, v, out, ffn.up, ffn.down in each of the 6 blocks
    assert not any(isinstance(m, SmoothQuantLinear) for m in minilm.bert.modules())


def test_plain_dynamic_quantization_is_worse_which_is_why_we_smooth(minilm, int8_minilm):
    """The reason for this module: the same int8 kernels without smoothing drift much further."""
    plain = quantize_int8(minilm, CALIBRATION, alpha=0.0, kernel="fbgemm")
    ours = embedding_agreement(minilm, int8_minilm, HELD_OUT)
    naive = embedding_agreement(minilm, plain, HELD_OUT)
    assert naive.min_cosine < ours.min_cosine - 0.02


def test_keep_fp32_and_bad_arguments(minilm):
    partial = quantize_int8(minilm, CALIBRATION[:8], keep_fp32=("ffn.down",), kernel="fbgemm")
    kinds = {name.rsplit(".", 1)[-1]: type(m).__name__
             for name, m in partial.bert.named_modules() if name.startswith("blocks.0.")}
    assert kinds["down"] in ("Linear", "PrepackedLinear") and kinds["up"] == "SmoothQuantLinear"
    with pytest.raises(ConfigError, match="alpha=1.5 must be in"):
        quantize_int8(minilm, CALIBRATION, alpha=1.5)
    with pytest.raises(InputDataError, match="calibration needs texts"):
        quantize_int8(minilm, [])


def test_smoothquant_linear_matches_float_linear_closely():
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 32)
    x = torch.randn(100, 64)
    x[:, 3] *= 40  # one outlier channel, as in real transformer activations
    q = SmoothQuantLinear(linear, x.abs().amax(0))
    expected = linear(x).detach()
    rel = (q(x) - expected).norm() / expected.norm()
    assert rel < 0.02
    np.testing.assert_equal(q(x[None]).shape, (1, 100, 32))


# ---------------------------------------------------------------------------------------------- classifiers
@pytest.fixture(scope="module")
def minilm_classifier(tmp_path_factory, minilm_dir):
    """minilm + a linear probe trained on 240 real tweets: a fine-tuned model with minilm's real activations."""
    from encoderlab.tasks.classify import ClassifyConfig, finetune_classifier

    out = tmp_path_factory.mktemp("clf") / "run"
    finetune_classifier(ClassifyConfig(data="tweets-sentiment", init=str(minilm_dir), mode="frozen", epochs=10,
                                       max_train_examples=240, max_eval_examples=32, max_test_examples=120,
                                       max_length=48, batch_size=16, out_dir=str(out), progress="off"))
    return out


@pytest.fixture(autouse=True)
def one_thread():
    """On a shared 2-core machine one thread avoids OpenMP threads spinning against each other."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("kernel", ["fbgemm", pytest.param("onednn", marks=needs_onednn)])
def test_int8_classifier_keeps_its_predictions(minilm_classifier, kernel):
    from encoderlab.artifacts.classifier import TextClassifier
    from encoderlab.tasks.classify import calibration_texts, evaluation_records

    fp32 = TextClassifier.from_pretrained(minilm_classifier)
    int8 = quantize_int8(fp32, calibration_texts(fp32), kernel=kernel)
    if kernel == "fbgemm":
        assert sum(isinstance(m, SmoothQuantLinear) for m in int8.model.bert.modules()) == 36
    else:  # the feed-forward networks in oneDNN int8, the rest of the encoder in bf16
        assert sum(isinstance(m, Int8FeedForward) for m in int8.model.bert.modules()) == 6
        assert int8.model.bert.blocks[0].attn.query.weight.dtype == torch.bfloat16
    assert isinstance(int8.model.head.out, torch.nn.Linear)  # the head stays fp32
    assert int8.model.head.out.weight.dtype == torch.float32
    assert not any(isinstance(m, SmoothQuantLinear | Int8FeedForward) for m in fp32.model.modules())  # untouched
    calibration = set(calibration_texts(fp32))
    test, _ = evaluation_records(fp32, "tweets-sentiment", "test")
    texts = [t for t in test.texts[:120] if t not in calibration]  # judged on texts it was not calibrated on
    p32, p8 = fp32.predict_proba(texts), int8.predict_proba(texts)
    agreement = float((p32.argmax(-1) == p8.argmax(-1)).mean())
    assert agreement >= 0.95, agreement
    assert np.abs(p32 - p8).mean() < 0.02


def test_cli_evaluate_and_predict_in_int8(tmp_path, minilm_classifier):
    import json

    from encoderlab.cli import main

    with pytest.raises(SystemExit) as code:  # the run's own 120 test rows (same seeded subset), in int8
        main(["evaluate", "--model", str(minilm_classifier), "--data", "tweets-sentiment", "--max-examples",
              "120", "--precision", "int8", "--output-dir", str(tmp_path)])
    assert code.value.code == 0
    fp32 = json.loads((minilm_classifier / "eval_test.json").read_text())  # the run scored its saved model
    int8 = json.loads((tmp_path / "eval_tweets-sentiment_test_int8.json").read_text())
    assert int8["precision"] == "int8" and sum(map(sum, int8["confusion"])) == 120
    assert abs(int8["accuracy"] - fp32["accuracy"]) <= 0.034  # 120 texts: at most 4 flips
    inputs = tmp_path / "in.txt"
    inputs.write_text("I love this!\nThis is awful.\n")
    with pytest.raises(SystemExit) as code:
        main(["predict", "--model", str(minilm_classifier), "--input", str(inputs), "--output",
              str(tmp_path / "p.jsonl"), "--precision", "int8"])
    assert code.value.code == 0
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 2
    with pytest.raises(SystemExit) as code:
        main(["evaluate", "--model", str(minilm_classifier), "--data", "tweets-sentiment", "--precision", "fp16"])
    assert code.value.code == 2


def test_activation_range_follows_the_cpu(monkeypatch, minilm):
    """8-bit activations only where VNNI sums int8 pairs in int32; 7-bit (safe everywhere) otherwise."""
    from encoderlab.compression import quantize

    for vnni, reduced in ((True, False), (False, True)):
        monkeypatch.setattr(quantize, "cpu_has_vnni", lambda vnni=vnni: vnni)
        layers = [m for m in quantize_int8(minilm, CALIBRATION[:8], kernel="fbgemm").bert.modules()
                  if isinstance(m, SmoothQuantLinear)]
        assert {m.reduce_range for m in layers} == {reduced}
    assert quantize.resolve_reduce_range(True) is True and quantize.resolve_reduce_range(False) is False
