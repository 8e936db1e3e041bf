"""Audio encoders: a clip's vector does not depend on its batch (padding, packing), fused == reference attention,
both encoders learn, and config errors say what to change."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from encoderlab.errors import ConfigError
from encoderlab.models.audio import AudioEncoderConfig, AudioModel, pad_waves, with_classes

torch.set_num_threads(1)
LENGTHS = (8000, 3001, 12345, 81, 6400)


def waves(seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [0.1 * torch.randn(n, generator=generator) for n in LENGTHS]


def small(architecture: str, **changes) -> AudioEncoderConfig:
    base = dict(channels=[8, 16, 16], d_model=32, n_layers=2, n_heads=4, d_ff=64, n_classes=3, dropout=0.0)
    return AudioEncoderConfig(architecture=architecture, **{**base, **changes})


@pytest.mark.parametrize("cfg", [small("cnn"), small("cnn", time_stride_every=2), small("transformer"),
                                 small("transformer", unpad=False), small("transformer", fused_attention=False),
                                 small("transformer", patch_mels=64, patch_frames=3)],
                         ids=["cnn", "cnn-stride2", "tf-packed", "tf-padded", "tf-reference", "tf-strips"])
def test_variable_length_batch_equals_one_by_one(cfg):
    torch.manual_seed(0)
    model = AudioModel(cfg).eval()
    model.set_feature_stats(torch.full((64,), -4.0), torch.full((64,), 2.0))
    clips = waves()
    batch, lengths = pad_waves(clips)
    with torch.no_grad():
        together = model.encode(batch, lengths)
        alone = torch.cat([model.encode(w[None], torch.tensor([len(w)])) for w in clips])
    assert together.shape == (len(clips), cfg.d_embedding)
    torch.testing.assert_close(together, alone, atol=2e-5, rtol=1e-4)
    assert together.std(dim=0).min() > 0  # different clips give different vectors


def test_packed_padded_fused_and_reference_paths_agree():
    torch.manual_seed(0)
    base = AudioModel(small("transformer")).eval()
    batch, lengths = pad_waves(waves(1))
    outputs = []
    for changes in ({}, {"unpad": False}, {"fused_attention": False}):
        model = AudioModel(dataclasses.replace(base.cfg, **changes)).eval()
        model.load_state_dict(base.state_dict())
        with torch.no_grad():
            outputs.append(model(batch, lengths))
    for other in outputs[1:]:
        torch.testing.assert_close(outputs[0], other, atol=2e-5, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["cnn", "transformer"])
def test_fits_a_tiny_two_tone_problem(architecture):
    """Low tones vs high tones: a few dozen steps must separate them (forward, backward, optimizer)."""
    torch.manual_seed(0)
    model = AudioModel(small(architecture, n_classes=2))
    t = torch.arange(4000) / 8000
    clips = [torch.sin(2 * torch.pi * f * t[: 2000 + 300 * i]) * 0.3 for i, f in enumerate([300, 450, 2500, 3100] * 2)]
    labels = torch.tensor([0, 0, 1, 1] * 2)
    batch, lengths = pad_waves(clips)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(40):
        loss = torch.nn.functional.cross_entropy(model(batch, lengths), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        assert (model(batch, lengths).argmax(-1) == labels).all()
    assert loss.item() < 0.2


def test_config_errors_say_what_to_change():
    with pytest.raises(ConfigError, match="patch_mels=24 must divide spectrogram.n_mels=64"):
        AudioEncoderConfig(patch_mels=24)
    with pytest.raises(ConfigError, match="not divisible"):
        AudioEncoderConfig(d_model=30, n_heads=4)
    with pytest.raises(ConfigError, match="'cnn' or 'transformer'"):
        AudioEncoderConfig(architecture="rnn")
    with pytest.raises(ConfigError, match="n_classes >= 2"):
        AudioModel(AudioEncoderConfig())
    with pytest.raises(ConfigError, match="the data has 5 classes"):
        with_classes(AudioEncoderConfig(n_classes=3), 5, 8000)
    assert with_classes(AudioEncoderConfig(), 5, 16000).spectrogram.sample_rate == 16000
