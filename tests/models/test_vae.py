"""VAE: shapes, the analytic KL, and the importance-sampled log-likelihood checked against a model whose
log p(x) is known in closed form (a linear-Gaussian VAE, i.e. probabilistic PCA)."""

import math

import numpy as np
import pytest
import torch

from encoderlab.models.autoencoder import AutoencoderConfig
from encoderlab.models.vae import VAE, Posterior

torch.set_num_threads(1)
D, L, SIGMA = 6, 2, 0.5


@pytest.mark.parametrize("kind, shape, hidden", [("mlp", (1, 28, 28), (32,)), ("conv", (1, 28, 28), (4, 8)),
                                                 ("mlp", (9,), (16, 8))])
def test_shapes_sample_and_backward(kind, shape, hidden):
    cfg = AutoencoderConfig(input_shape=shape, kind=kind, hidden=hidden, latent_dim=5, variational=True)
    model = VAE(cfg)
    x = torch.rand(3, *shape).bernoulli()
    terms = model.elbo(x, beta=0.5)
    assert terms.elbo.shape == terms.kl.shape == (3,) and terms.logits.shape == x.shape
    assert model.encode(x).shape == (3, 5) and model.sample(7).shape == (7, *shape)
    assert model.log_weights(x, 4).shape == (4, 3)
    (-model.iwae_bound(x, 3).mean() - terms.elbo.mean()).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_analytic_kl_matches_monte_carlo():
    torch.manual_seed(0)
    q = Posterior(torch.randn(1, 3), torch.randn(1, 3) * 0.5)
    z = q.mu + (0.5 * q.logvar).exp() * torch.randn(200_000, 3)
    log_q = torch.distributions.Normal(q.mu, (0.5 * q.logvar).exp()).log_prob(z).sum(-1)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    assert q.kl_to_prior().item() == pytest.approx((log_q - log_p).mean().item(), abs=0.01)


def linear_gaussian_vae(exact_posterior: bool = True) -> tuple[VAE, torch.Tensor, torch.Tensor]:
    """A VAE with decoder x = W z + b + N(0, SIGMA^2 I), W with orthogonal columns, so the true posterior is
    diagonal and the encoder can be set to it exactly. Returns (model, W, b)."""
    cfg = AutoencoderConfig(input_shape=(D,), hidden=(), latent_dim=L, output="identity", reconstruction="mse",
                            variational=True, decoder_std=SIGMA)
    model = VAE(cfg).double()
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(D, D, generator=g, dtype=torch.float64))
    w = q[:, :L] * torch.tensor([2.0, 0.7], dtype=torch.float64)  # (D, L)
    b = torch.randn(D, generator=g, dtype=torch.float64)
    post_var = 1.0 / (1.0 + (w * w).sum(0) / SIGMA**2)  # (L,) diagonal of (I + W^T W / s^2)^-1
    gain = post_var[:, None] * w.T / SIGMA**2  # (L, D): posterior mean = gain @ (x - b)
    with torch.no_grad():
        model.decoder[0].weight.copy_(w)
        model.decoder[0].bias.copy_(b)
        enc = model.encoder[1]
        enc.weight.zero_()
        enc.weight[:L] = gain if exact_posterior else 0.6 * gain
        enc.bias[:L] = -gain @ b
        enc.bias[L:] = post_var.log() + (0.0 if exact_posterior else 0.8)
    return model, w, b


def exact_log_px(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    cov = w @ w.T + SIGMA**2 * torch.eye(D, dtype=torch.float64)
    return torch.distributions.MultivariateNormal(b, cov).log_prob(x)


def test_importance_sampling_is_exact_with_the_true_posterior():
    model, w, b = linear_gaussian_vae(exact_posterior=True)
    x = torch.randn(20, D, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2
    truth = exact_log_px(x, w, b)
    torch.testing.assert_close(model.importance_log_likelihood(x, k=3), truth, rtol=0, atol=1e-9)
    # and the ELBO equals log p(x) in expectation (KL to the true posterior is 0)
    torch.manual_seed(0)
    with torch.no_grad():
        elbo = torch.stack([model.elbo(x).elbo for _ in range(2000)]).mean()
    assert elbo.item() == pytest.approx(truth.mean().item(), abs=0.02)


def test_iwae_bound_tightens_with_k_towards_the_true_log_likelihood():
    model, w, b = linear_gaussian_vae(exact_posterior=False)
    x = torch.randn(200, D, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 2
    truth = exact_log_px(x, w, b).mean().item()
    torch.manual_seed(0)
    with torch.no_grad():
        elbo = model.elbo(x).elbo.mean().item()
    estimates = [model.importance_log_likelihood(x, k=k, chunk=100).mean().item() for k in (1, 10, 1000)]
    gaps = [truth - e for e in estimates]
    assert truth - elbo > 0.3  # the perturbed encoder leaves a real gap ...
    assert gaps[0] > gaps[1] > gaps[2] > -0.01  # ... that importance sampling closes, from below
    assert gaps[2] < 0.05 * gaps[0]


def test_nll_is_reported_in_nats_per_sample():
    """An untrained Bernoulli VAE on 784 pixels is near chance: log p(x) ~ -784 * log 2."""
    torch.manual_seed(0)
    cfg = AutoencoderConfig(input_shape=(784,), hidden=(8,), latent_dim=2, variational=True, reconstruction="bce")
    model = VAE(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1e-3)
    nll = -model.importance_log_likelihood(torch.rand(5, 784).bernoulli(), k=4).mean().item()
    assert nll == pytest.approx(784 * math.log(2), rel=0.01)
    assert np.isfinite(nll)


def test_forward_is_the_training_bound():
    model = VAE(AutoencoderConfig(input_shape=(12,), hidden=(8,), latent_dim=3, variational=True))
    x = torch.rand(5, 12).bernoulli()
    for k, reference in ((1, lambda: model.elbo(x, 0.5).elbo), (3, lambda: model.iwae_bound(x, 3, 0.5))):
        torch.manual_seed(0)
        got = model(x, beta=0.5, k=k)
        torch.manual_seed(0)
        torch.testing.assert_close(got, reference())
