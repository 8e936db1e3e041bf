import numpy as np
import pytest
import torch

from encoderlab import ConfigError, InputDataError
from encoderlab.compression.quantize import SmoothQuantLinear, embedding_agreement, quantize_int8
from interop.varied_texts import varied_texts

TEXTS = varied_texts()
CALIBRATION, HELD_OUT = TEXTS[::2], TEXTS[1::2]  # calibrate on one half, judge on the other


@pytest.fixture(scope="module")
def int8_minilm(minilm):
    return quantize_int8(minilm, CALIBRATION)


def test_int8_embeddings_stay_close_on_held_out_texts(minilm, int8_minilm):
    agreement = embedding_agreement(minilm, int8_minilm, HELD_OUT)
    assert agreement.mean_cosine >= 0.99 and agreement.min_cosine >= 0.97, agreement


def test_every_encoder_linear_is_int8_and_the_original_is_untouched(minilm, int8_minilm):
    replaced = [m for m in int8_minilm.bert.modules() if isinstance(m, SmoothQuantLinear)]
    assert len(replaced) == 6 * 6  # q, k, v, out, ffn.up, ffn.down in each of the 6 blocks
    assert not any(isinstance(m, SmoothQuantLinear) for m in minilm.bert.modules())


def test_plain_dynamic_quantization_is_worse_which_is_why_we_smooth(minilm, int8_minilm):
    """The reason for this module: the same int8 kernels without smoothing drift much further."""
    plain = quantize_int8(minilm, CALIBRATION, alpha=0.0)
    ours = embedding_agreement(minilm, int8_minilm, HELD_OUT)
    naive = embedding_agreement(minilm, plain, HELD_OUT)
    assert naive.min_cosine < ours.min_cosine - 0.02


def test_keep_fp32_and_bad_arguments(minilm):
    partial = quantize_int8(minilm, CALIBRATION[:8], keep_fp32=("ffn.down",))
    kinds = {name.rsplit(".", 1)[-1]: type(m).__name__
             for name, m in partial.bert.named_modules() if name.startswith("blocks.0.")}
    assert kinds["down"] == "Linear" and kinds["up"] == "SmoothQuantLinear"
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
