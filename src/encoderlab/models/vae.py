"""Variational autoencoder (Kingma & Welling, 2014, "Auto-Encoding Variational Bayes") with the
importance-weighted bound (Burda, Grosse & Salakhutdinov, 2016, "Importance Weighted Autoencoders").

Model: p(z) = N(0, I); encoder q(z|x) = N(mu(x), diag sigma(x)^2); decoder p(x|z) Bernoulli (logits, for
binarised MNIST) or Gaussian with a fixed std (`AutoencoderConfig.decoder_std`). The encoder and decoder
bodies are the ones of `models.autoencoder` (MLP or conv); the encoder just outputs 2 * latent_dim numbers.

Training maximises the ELBO  E_q[log p(x|z)] - beta * KL(q(z|x) || p(z))  with the analytic Gaussian KL
(beta ramps up from 0 during a KL warm-up, Bowman et al. 2016 / Sønderby et al. 2016), or the IWAE bound
with k samples. Evaluation reports the test negative log-likelihood the way papers do: the k-sample
importance-sampling estimate  log p(x) ~= log (1/k) sum_i p(x, z_i) / q(z_i|x),  z_i ~ q(z|x),  which is a
lower bound on log p(x) that tightens as k grows (Burda et al. use k = 5000; pythae reports k = 50 on
binarised MNIST). All log-probabilities here are per sample, in nats, summed over the sample's elements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from .autoencoder import AutoencoderConfig, bce_with_logits, build_decoder, build_encoder, to_data_space

LOG_2PI = math.log(2 * math.pi)


@dataclass
class Posterior:
    mu: torch.Tensor
    """(B, L) mean of q(z|x)."""
    logvar: torch.Tensor
    """(B, L) log-variance of q(z|x)."""

    def kl_to_prior(self) -> torch.Tensor:
        """KL(q(z|x) || N(0, I)) per sample (B,), in closed form."""
        return 0.5 * (self.mu.square() + self.logvar.exp() - 1.0 - self.logvar).sum(-1)


@dataclass
class ELBOTerms:
    elbo: torch.Tensor
    """(B,) log p(x|z) - beta * KL: the training objective per sample (maximise)."""
    log_likelihood: torch.Tensor
    """(B,) single-sample estimate of E_q[log p(x|z)]."""
    kl: torch.Tensor
    """(B,) KL(q(z|x) || p(z))."""
    logits: torch.Tensor
    """(B, *input_shape) decoder logits of the sampled z."""


class VAE(nn.Module):
    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        if not cfg.input_shape:
            raise ConfigError("AutoencoderConfig.input_shape is empty; set it (the training task fills it in)")
        self.cfg = cfg
        self.encoder = build_encoder(cfg, 2 * cfg.latent_dim)
        self.decoder = build_decoder(cfg)

    # ---------------------------------------------------------------- the two distributions
    def posterior(self, x: torch.Tensor) -> Posterior:
        mu, logvar = self.encoder(x).chunk(2, dim=-1)  # (B, L) each
        return Posterior(mu, logvar.clamp(-30.0, 20.0))  # keep exp(logvar) finite early in training

    def log_likelihood(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per sample, summed over elements: (..., *input_shape) -> (...)."""
        n_dims = len(self.cfg.input_shape)
        if self.cfg.reconstruction == "bce":
            log_p = -bce_with_logits(logits, x.expand_as(logits))
        else:
            std = self.cfg.decoder_std
            log_p = -0.5 * ((to_data_space(logits, self.cfg) - x) / std).square() - math.log(std) - 0.5 * LOG_2PI
        return log_p.flatten(-n_dims).sum(-1)

    # ---------------------------------------------------------------- public API
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean, the usual embedding: (B, *input_shape) -> (B, L)."""
        return self.posterior(x).mu

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean of p(x|z) in data space: (B, L) -> (B, *input_shape)."""
        return to_data_space(self.decoder(z), self.cfg)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Means of p(x|z) for n draws z ~ p(z): (n, *input_shape)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.cfg.latent_dim, generator=generator, device=device)
        return self.decode(z)

    # ---------------------------------------------------------------- objectives
    def elbo(self, x: torch.Tensor, beta: float = 1.0, x_input: torch.Tensor | None = None) -> ELBOTerms:
        """Single-sample reparameterised ELBO with the analytic KL. `x_input` (default `x`) is what the encoder
        sees: a corrupted copy makes it a denoising VAE (Im et al., 2017)."""
        q = self.posterior(x if x_input is None else x_input)
        z = q.mu + (0.5 * q.logvar).exp() * torch.randn_like(q.mu)  # (B, L)
        logits = self.decoder(z)  # (B, *input_shape)
        log_px = self.log_likelihood(logits, x)
        kl = q.kl_to_prior()
        return ELBOTerms(log_px - beta * kl, log_px, kl, logits)

    def log_weights(self, x: torch.Tensor, k: int, beta: float = 1.0,
                    x_input: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x|z_i) + beta * (log p(z_i) - log q(z_i|x)) for k samples z_i ~ q(z|x): (k, B)."""
        q = self.posterior(x if x_input is None else x_input)
        eps = torch.randn(k, *q.mu.shape, device=x.device, dtype=q.mu.dtype)  # (k, B, L)
        z = q.mu + (0.5 * q.logvar).exp() * eps
        logits = self.decoder(z.flatten(0, 1)).unflatten(0, (k, len(x)))  # (k, B, *input_shape)
        log_px = self.log_likelihood(logits, x)  # (k, B)
        log_pz = -0.5 * (z.square() + LOG_2PI).sum(-1)
        log_qz = -0.5 * (eps.square() + LOG_2PI + q.logvar).sum(-1)
        return log_px + beta * (log_pz - log_qz)

    def iwae_bound(self, x: torch.Tensor, k: int, beta: float = 1.0,
                   x_input: torch.Tensor | None = None) -> torch.Tensor:
        """The k-sample importance-weighted bound per sample (B,); k = 1 is a Monte-Carlo ELBO."""
        return torch.logsumexp(self.log_weights(x, k, beta, x_input), dim=0) - math.log(k)

    def forward(self, x: torch.Tensor, beta: float = 1.0, k: int = 1,
                x_input: torch.Tensor | None = None) -> torch.Tensor:
        """The training bound per sample (B,): the analytic-KL ELBO for k = 1, the IWAE bound for k > 1.
        (The objective is `forward`, so DDP's gradient hooks see it.)"""
        if k == 1:
            return self.elbo(x, beta, x_input).elbo
        return self.iwae_bound(x, k, beta, x_input)

    @torch.no_grad()
    def importance_log_likelihood(self, x: torch.Tensor, k: int = 50, chunk: int = 50) -> torch.Tensor:
        """log p(x) estimated with k importance samples (B,), drawn `chunk` at a time to bound memory.
        The test NLL papers report is minus the mean of this over the test set."""
        if k < 1:
            raise ConfigError(f"k={k}: importance sampling needs at least 1 sample")
        parts = [torch.logsumexp(self.log_weights(x, min(chunk, k - done)), dim=0)
                 for done in range(0, k, chunk)]  # each (B,): log sum_i w_i over one chunk
        return torch.logsumexp(torch.stack(parts), dim=0) - math.log(k)
