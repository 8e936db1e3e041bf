"""Log-mel spectrogram front end, MFCCs, and SpecAugment masking, in torch.

    front = LogMel(SpectrogramConfig(sample_rate=8000))
    feats, frames = front(waves, lengths)      # (B, L) padded waveforms -> (B, n_mels, T) log-mel, (B,) frames

A short-time Fourier transform with a periodic Hann window (`n_fft` samples, hop `hop_length`), the power
spectrum, a bank of `n_mels` triangular filters evenly spaced on the HTK mel scale
(mel = 2595 · log10(1 + f / 700)), then log(· + eps). Frames are centred on multiples of the hop: the
waveform is padded by n_fft / 2 zeros on both sides (zeros, not a reflection, so that the frames of a short
clip padded into a batch equal the frames of the clip alone), giving 1 + L // hop frames for L samples.

MFCCs (Davis & Mermelstein, 1980) are the orthonormal DCT-II of the log-mel energies. SpecAugment (Park et
al., 2019) zeroes random bands of mel channels and of frames during training, inside each clip's real length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError


@dataclass
class SpectrogramConfig:
    """The log-mel front end (defaults: 25 ms windows every 10 ms at 8 kHz, 64 mel bands up to 4 kHz)."""

    sample_rate: int = 8000
    """Rate of the waveforms the front end reads (Hz)."""
    n_fft: int = 256
    """FFT size in samples (frequency resolution sample_rate / n_fft)."""
    win_length: int = 200
    """Window length in samples (<= n_fft; the window is zero-padded to n_fft)."""
    hop_length: int = 80
    """Samples between frame centres (80 at 8 kHz = 10 ms: 100 frames per second)."""
    n_mels: int = 64
    """Mel bands."""
    f_min: float = 0.0
    """Lowest filter edge (Hz)."""
    f_max: float | None = None
    """Highest filter edge (Hz); null = the Nyquist frequency sample_rate / 2."""
    log_eps: float = 1e-6
    """Added to the mel energies before the log (silence stays finite)."""

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels"):
            if getattr(self, name) < 1:
                raise ConfigError(f"SpectrogramConfig.{name}={getattr(self, name)} must be >= 1")
        if self.win_length > self.n_fft:
            raise ConfigError(f"SpectrogramConfig.win_length={self.win_length} exceeds n_fft={self.n_fft}; "
                              "lower win_length or raise n_fft")
        top = self.f_max if self.f_max is not None else self.sample_rate / 2
        if not 0 <= self.f_min < top <= self.sample_rate / 2:
            raise ConfigError(f"SpectrogramConfig: need 0 <= f_min ({self.f_min}) < f_max ({top}) <= "
                              f"sample_rate / 2 ({self.sample_rate / 2})")
        if self.n_mels > self.n_fft // 2 + 1:
            raise ConfigError(f"SpectrogramConfig.n_mels={self.n_mels} exceeds the {self.n_fft // 2 + 1} FFT bins; "
                              "lower n_mels or raise n_fft")
        if self.log_eps <= 0:
            raise ConfigError(f"SpectrogramConfig.log_eps={self.log_eps} must be positive")

    @property
    def top_frequency(self) -> float:
        return self.f_max if self.f_max is not None else self.sample_rate / 2

    def frames(self, n_samples: torch.Tensor | int) -> torch.Tensor | int:
        """Frames of a clip of n_samples samples (centred framing): 1 + n_samples // hop_length."""
        return 1 + n_samples // self.hop_length


def hz_to_mel(f: torch.Tensor | float) -> torch.Tensor | float:
    """HTK mel scale."""
    return 2595.0 * (torch.log10(1.0 + f / 700.0) if isinstance(f, torch.Tensor) else math.log10(1.0 + f / 700.0))


def mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int, f_min: float, f_max: float) -> torch.Tensor:
    """(n_freqs, n_mels) triangular filters with peak 1, n_mels + 2 edges evenly spaced in mel, evaluated at the
    n_freqs FFT bin frequencies k · sample_rate / n_fft (n_fft = 2 · (n_freqs - 1))."""
    freqs = torch.linspace(0, sample_rate / 2, n_freqs, dtype=torch.float64)  # (F,)
    edges = mel_to_hz(torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2, dtype=torch.float64))
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]  # (M,) each
    rising = (freqs[:, None] - lower) / (centre - lower)     # (F, M)
    falling = (upper - freqs[:, None]) / (upper - centre)    # (F, M)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


def dct_matrix(n_mfcc: int, n_mels: int) -> torch.Tensor:
    """(n_mels, n_mfcc) orthonormal DCT-II: mfcc = log_mel @ D (as scipy.fft.dct(type=2, norm='ortho'))."""
    n = torch.arange(n_mels, dtype=torch.float64)
    k = torch.arange(n_mfcc, dtype=torch.float64)
    basis = torch.cos(math.pi / n_mels * (n[:, None] + 0.5) * k[None, :])  # (M, K)
    basis[:, 0] *= 1.0 / math.sqrt(2.0)
    return (basis * math.sqrt(2.0 / n_mels)).float()


class LogMel(nn.Module):
    """Padded waveforms -> log-mel features and their frame counts (the filterbank and window are buffers)."""

    def __init__(self, cfg: SpectrogramConfig):
        super().__init__()
        self.cfg = cfg
        window = torch.hann_window(cfg.win_length, periodic=True)
        left = (cfg.n_fft - cfg.win_length) // 2  # centre the window in the n_fft frame, as torch.stft does
        self.register_buffer("window", nn.functional.pad(window, (left, cfg.n_fft - cfg.win_length - left)),
                             persistent=False)
        self.register_buffer("filters", mel_filterbank(cfg.n_fft // 2 + 1, cfg.n_mels, cfg.sample_rate,
                                                       cfg.f_min, cfg.top_frequency), persistent=False)
        self.conv_dft = False
        """True: framing and DFT as one strided convolution with windowed cosine and sine kernels instead of
        unfold + torch.fft (the same numbers to float precision); ONNX exporters accept a Conv where they
        refuse an FFT or a dynamic unfold."""

    def power_spectrum(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L + n_fft) padded waveforms -> (B, T, n_fft // 2 + 1) |DFT|² of the windowed frames."""
        cfg = self.cfg
        if not self.conv_dft:
            frames = x.unfold(-1, cfg.n_fft, cfg.hop_length)  # (B, T, n_fft), T = 1 + L // hop
            spectrum = torch.fft.rfft(frames * self.window, dim=-1)  # (B, T, F)
            return spectrum.real.square() + spectrum.imag.square()
        n = torch.arange(cfg.n_fft, dtype=torch.float64)
        angle = 2 * math.pi * n[None, :] * torch.arange(cfg.n_fft // 2 + 1, dtype=torch.float64)[:, None] / cfg.n_fft
        kernels = torch.cat([torch.cos(angle), -torch.sin(angle)]) * self.window.double()  # (2F, n_fft)
        out = nn.functional.conv1d(x[:, None], kernels[:, None].to(x.dtype), stride=cfg.hop_length)  # (B, 2F, T)
        real, imag = out.chunk(2, dim=1)
        return (real.square() + imag.square()).transpose(1, 2)  # (B, T, F)

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """waves (B, L) zero-padded after each clip's `lengths` (B,) samples -> ((B, n_mels, T) log-mel,
        (B,) frame counts). Frames past a clip's count are set to 0."""
        cfg = self.cfg
        B, L = waves.shape
        if lengths is None:
            lengths = torch.full((B,), L, dtype=torch.long, device=waves.device)
        x = nn.functional.pad(waves, (cfg.n_fft // 2, cfg.n_fft // 2))  # (B, L + n_fft) zero-padded
        power = self.power_spectrum(x)  # (B, T, F), T = 1 + L // hop
        mel = torch.log(power @ self.filters + cfg.log_eps)  # (B, T, M)
        n_frames = 1 + torch.div(lengths, cfg.hop_length, rounding_mode="floor")  # (B,)
        mask = frame_mask(n_frames, mel.size(1))  # (B, T)
        return (mel * mask[..., None]).transpose(1, 2), n_frames  # (B, M, T)


def frame_mask(n_frames: torch.Tensor, total: int) -> torch.Tensor:
    """(B,) counts -> (B, total) float mask, 1 for the first count frames of each row."""
    return (torch.arange(total, device=n_frames.device)[None, :] < n_frames[:, None]).float()


def mfcc(log_mel: torch.Tensor, n_mfcc: int) -> torch.Tensor:
    """(..., n_mels, T) log-mel -> (..., n_mfcc, T) MFCCs."""
    basis = dct_matrix(n_mfcc, log_mel.size(-2)).to(log_mel)  # (M, K)
    return (log_mel.transpose(-1, -2) @ basis).transpose(-1, -2)


def spec_augment(features: torch.Tensor, n_frames: torch.Tensor, freq_masks: int, freq_width: int,
                 time_masks: int, time_width: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """SpecAugment without time warping: per clip, `freq_masks` bands of up to `freq_width` mel channels and
    `time_masks` bands of up to `time_width` (a fraction of the clip's frames) are set to 0 (the mean of
    normalised features). features (B, M, T); returns a new tensor."""
    B, M, T = features.shape
    out = features.clone()
    for b in range(B):
        length = int(n_frames[b])
        for _ in range(freq_masks):
            width = int(torch.randint(0, freq_width + 1, (1,), generator=generator))
            start = int(torch.randint(0, max(1, M - width + 1), (1,), generator=generator))
            out[b, start:start + width, :] = 0.0
        max_t = int(time_width * length)
        for _ in range(time_masks):
            width = int(torch.randint(0, max_t + 1, (1,), generator=generator))
            start = int(torch.randint(0, max(1, length - width + 1), (1,), generator=generator))
            out[b, :, start:start + width] = 0.0
    return out
