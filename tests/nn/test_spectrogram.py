"""The log-mel front end against a NumPy reference written independently here, MFCCs against scipy's DCT,
batch == one clip at a time, and SpecAugment staying inside each clip."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import torch

from encoderlab.errors import ConfigError
from encoderlab.nn.spectrogram import LogMel, SpectrogramConfig, mel_filterbank, mfcc, spec_augment

torch.set_num_threads(1)


def reference_mel_filters(n_fft: int, n_mels: int, rate: int, f_min: float, f_max: float) -> np.ndarray:
    """HTK triangles, bin by bin in float64 with explicit loops (the textbook construction)."""
    def to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def to_hz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    edges = to_hz(np.linspace(to_mel(f_min), to_mel(f_max), n_mels + 2))
    bins = np.arange(n_fft // 2 + 1) * rate / n_fft
    filters = np.zeros((len(bins), n_mels))
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        for k, f in enumerate(bins):
            if lo < f <= mid:
                filters[k, m] = (f - lo) / (mid - lo)
            elif mid < f < hi:
                filters[k, m] = (hi - f) / (hi - mid)
    return filters


def reference_log_mel(wave: np.ndarray, cfg: SpectrogramConfig) -> np.ndarray:
    """Frames centred every hop with zero padding, periodic Hann window centred in n_fft, |rfft|², mel, log."""
    half = cfg.n_fft // 2
    padded = np.concatenate([np.zeros(half), wave.astype(np.float64), np.zeros(half)])
    n = np.arange(cfg.win_length)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / cfg.win_length)  # periodic
    window = np.zeros(cfg.n_fft)
    left = (cfg.n_fft - cfg.win_length) // 2
    window[left:left + cfg.win_length] = hann
    n_frames = 1 + len(wave) // cfg.hop_length
    frames = np.stack([padded[t * cfg.hop_length:t * cfg.hop_length + cfg.n_fft] for t in range(n_frames)])
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2  # (T, F)
    filters = reference_mel_filters(cfg.n_fft, cfg.n_mels, cfg.sample_rate, cfg.f_min, cfg.top_frequency)
    return np.log(power @ filters + cfg.log_eps).T  # (M, T)


def speech_like(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 8000
    return (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t) + 0.05 * rng.standard_normal(n)).astype(
        np.float32)


def test_filterbank_matches_the_textbook_construction():
    ours = mel_filterbank(129, 40, 8000, 50.0, 3800.0).double().numpy()
    np.testing.assert_allclose(ours, reference_mel_filters(256, 40, 8000, 50.0, 3800.0), atol=1e-6)
    assert (ours.max(axis=0) > 0.3).all()  # no empty filter at this resolution


@pytest.mark.parametrize("cfg", [SpectrogramConfig(), SpectrogramConfig(n_fft=512, win_length=400, hop_length=160,
                                                                        n_mels=80, sample_rate=16000, f_min=20)])
def test_log_mel_matches_numpy_reference(cfg):
    wave = speech_like(5 * cfg.hop_length + 37)
    features, frames = LogMel(cfg)(torch.from_numpy(wave)[None])
    reference = reference_log_mel(wave, cfg)
    assert features.shape == (1, cfg.n_mels, reference.shape[1]) and int(frames[0]) == reference.shape[1]
    np.testing.assert_allclose(features[0].double().numpy(), reference, atol=2e-3, rtol=1e-4)


def test_a_tone_lights_the_filter_at_its_frequency():
    cfg = SpectrogramConfig()
    t = np.arange(8000) / 8000
    features, _ = LogMel(cfg)(torch.from_numpy(np.sin(2 * np.pi * 1000 * t).astype(np.float32))[None])
    filters = mel_filterbank(cfg.n_fft // 2 + 1, cfg.n_mels, 8000, 0, 4000)
    expected = int(filters[1000 * cfg.n_fft // 8000].argmax())  # the filter peaking nearest the 1 kHz bin
    assert int(features[0, :, 50].argmax()) == expected


def test_batch_equals_one_clip_at_a_time():
    front = LogMel(SpectrogramConfig())
    waves = [speech_like(n, seed=n) for n in (800, 2345, 4000, 81)]
    batch = torch.zeros(len(waves), 4000)
    for i, w in enumerate(waves):
        batch[i, :len(w)] = torch.from_numpy(w)
    features, frames = front(batch, torch.tensor([len(w) for w in waves]))
    for i, w in enumerate(waves):
        alone, n = front(torch.from_numpy(w)[None])
        assert int(frames[i]) == int(n[0]) == 1 + len(w) // 80
        torch.testing.assert_close(features[i, :, :int(n[0])], alone[0], atol=1e-5, rtol=1e-5)
        assert float(features[i, :, int(n[0]):].abs().sum()) == 0.0  # frames past the clip are zero


def test_convolution_dft_equals_fft():
    """The ONNX-friendly path (framing + DFT as one strided convolution) computes the same features."""
    front = LogMel(SpectrogramConfig())
    waves = torch.from_numpy(np.stack([speech_like(3000, 1), speech_like(3000, 2)]))
    fast, _ = front(waves, torch.tensor([3000, 1234]))
    front.conv_dft = True
    conv, _ = front(waves, torch.tensor([3000, 1234]))
    torch.testing.assert_close(conv, fast, atol=1e-3, rtol=1e-4)


def test_mfcc_is_scipy_orthonormal_dct():
    log_mel = torch.randn(2, 40, 7)
    expected = scipy.fft.dct(log_mel.double().numpy(), type=2, norm="ortho", axis=1)[:, :13]
    np.testing.assert_allclose(mfcc(log_mel, 13).double().numpy(), expected, atol=1e-5)


def test_spec_augment_masks_inside_each_clip_and_is_seeded():
    features = torch.ones(3, 64, 100)
    frames = torch.tensor([100, 40, 10])
    a = spec_augment(features, frames, 2, 8, 2, 0.2, torch.Generator().manual_seed(0))
    b = spec_augment(features, frames, 2, 8, 2, 0.2, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and torch.equal(features, torch.ones(3, 64, 100))  # the input is untouched
    assert (a == 0).any()
    for i, n in enumerate(frames.tolist()):
        zero_frames = (a[i] == 0).all(dim=0).nonzero().flatten()
        assert zero_frames.numel() <= 2 * int(0.2 * n)  # time masks only within the clip, at most 20% each
        assert (zero_frames < n).all()
        zero_bands = (a[i] == 0).all(dim=1).sum()
        assert zero_bands <= 16


def test_config_errors_name_the_fix():
    with pytest.raises(ConfigError, match="win_length=300 exceeds n_fft=256"):
        SpectrogramConfig(win_length=300)
    with pytest.raises(ConfigError, match="f_max"):
        SpectrogramConfig(f_max=5000)
    with pytest.raises(ConfigError, match="n_mels=200 exceeds"):
        SpectrogramConfig(n_mels=200)
