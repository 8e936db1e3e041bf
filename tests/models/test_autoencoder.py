"""Autoencoder: shapes for every body, config errors, noise, and real learning on held-out MNIST digits."""

import numpy as np
import pytest
import torch

from encoderlab.data.arrays import load_mnist
from encoderlab.errors import ConfigError
from encoderlab.models.autoencoder import (
    Autoencoder,
    AutoencoderConfig,
    autoencoder_loss,
    conv_sizes,
    corrupt,
)
from encoderlab.tasks import autoencode
from encoderlab.tasks.autoencode import pca_reconstruction_mse

torch.set_num_threads(1)


@pytest.mark.parametrize("shape, kind, hidden", [
    ((1, 28, 28), "conv", (16, 32)),
    ((3, 13, 17), "conv", (4, 8, 8)),  # odd sizes: the transposed convs must land exactly
    ((1, 5, 5), "conv", (4,)),
    ((1, 28, 28), "mlp", (64, 32)),
    ((9,), "mlp", (16,)),
    ((9,), "mlp", ()),  # a linear autoencoder
])
@pytest.mark.parametrize("batch_norm, dropout", [(False, 0.0), (True, 0.2)])
def test_shapes_and_backward(shape, kind, hidden, batch_norm, dropout):
    cfg = AutoencoderConfig(input_shape=shape, kind=kind, hidden=hidden, latent_dim=3, batch_norm=batch_norm,
                            dropout=dropout, output="sigmoid", reconstruction="mse")
    model = Autoencoder(cfg)
    x = torch.rand(4, *shape)
    out = model(x)
    assert out.code.shape == (4, 3) and out.logits.shape == (4, *shape)
    assert model.reconstruct(x).shape == x.shape and 0 <= model.decode(out.code).min()
    loss = autoencoder_loss(model, x, "gaussian", 0.1, sparsity=0.01)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_conv_sizes():
    assert conv_sizes(28, 3) == [28, 14, 7, 4]


@pytest.mark.parametrize("kwargs, message", [
    ({"latent_dim": 0}, "latent_dim=0"),
    ({"reconstruction": "bce", "output": "identity"}, "reconstruction=bce needs output=sigmoid"),
    ({"kind": "conv", "input_shape": (9,)}, "kind=conv needs image data"),
    ({"hidden": (8, 0)}, "at least 1 unit"),
    ({"activation": "swish2"}, "activation='swish2' is unknown"),
    ({"dropout": 1.0}, "dropout=1.0"),
])
def test_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        AutoencoderConfig(**kwargs)


@pytest.mark.parametrize("shape, kwargs, expected", [
    ((9,), {}, ("identity", "mse")),  # standardised table: unbounded values
    ((1, 5, 5), {}, ("sigmoid", "bce")),  # images in [0, 1]
    ((1, 5, 5), {"reconstruction": "mse"}, ("sigmoid", "mse")),
    ((1, 5, 5), {"output": "identity"}, ("identity", "mse")),
    ((9,), {"reconstruction": "bce"}, ("sigmoid", "bce")),  # explicit choices win (training refuses this one)
])
def test_auto_output_and_loss_follow_the_data(shape, kwargs, expected):
    cfg = AutoencoderConfig(input_shape=shape, **kwargs)
    assert (cfg.output, cfg.reconstruction) == expected
    assert (AutoencoderConfig(**kwargs).output, AutoencoderConfig(**kwargs).reconstruction) == (
        kwargs.get("output", "auto"), kwargs.get("reconstruction", "auto"))  # unresolved until the shape is known


def test_default_widths_follow_the_kind():
    assert AutoencoderConfig().hidden == (512, 128) and AutoencoderConfig(kind="conv").hidden == (32, 64)
    assert AutoencoderConfig(kind="conv", hidden=(8,)).hidden == (8,) and AutoencoderConfig(hidden=()).hidden == ()


def test_model_needs_input_shape():
    with pytest.raises(ConfigError, match="input_shape is empty"):
        Autoencoder(AutoencoderConfig())


def test_corruption():
    torch.manual_seed(0)
    x = torch.ones(200, 50)
    assert abs((corrupt(x, "masking", 0.3) == 0).float().mean().item() - 0.3) < 0.02
    assert abs((corrupt(x, "gaussian", 0.5) - x).std().item() - 0.5) < 0.02
    assert corrupt(x, "none", 0.5) is x


def test_sparsity_penalty_shrinks_codes():
    torch.manual_seed(0)
    x = torch.rand(256, 20)
    norms = {}
    for sparsity in (0.0, 0.05):
        torch.manual_seed(0)
        model = Autoencoder(AutoencoderConfig(input_shape=(20,), hidden=(32,), latent_dim=8))
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(80):
            opt.zero_grad()
            autoencoder_loss(model, x, sparsity=sparsity).backward()
            opt.step()
        norms[sparsity] = model.encode(x).abs().sum(1).mean().item()
    assert norms[0.05] < 0.5 * norms[0.0]


@pytest.mark.slow
def test_small_autoencoder_beats_mean_image_and_pca_on_held_out_digits():
    """A real, small learning test: 3,000 training digits, 500 steps, scored on 1,000 unseen test digits."""
    mnist = load_mnist()
    train, test = mnist.train.x[:3000], mnist.test.x[:1000]
    torch.manual_seed(0)
    model = Autoencoder(AutoencoderConfig(input_shape=(1, 28, 28), hidden=(256, 64), latent_dim=10))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x_train = torch.from_numpy(train)
    generator = torch.Generator().manual_seed(0)
    for _ in range(500):
        batch = x_train[torch.randint(len(x_train), (64,), generator=generator)]
        opt.zero_grad()
        autoencoder_loss(model, batch).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        mse = (model.reconstruct(torch.from_numpy(test)).numpy() - test).__pow__(2).mean()
    mean_mse = ((train.mean(0) - test) ** 2).mean()
    pca_mse = pca_reconstruction_mse(train, test, 10)
    assert mse < 0.5 * mean_mse, (mse, mean_mse, pca_mse)
    assert mse < pca_mse, (mse, pca_mse)


def test_pca_baseline_matches_truncated_svd():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(200, 12)) @ rng.normal(size=(12, 12))
    test = rng.normal(size=(50, 12)) @ rng.normal(size=(12, 12))
    mean = train.mean(0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    recon = (test - mean) @ vt[:4].T @ vt[:4] + mean
    assert pca_reconstruction_mse(train, test, 4) == pytest.approx(((recon - test) ** 2).mean(), rel=1e-8)
    assert pca_reconstruction_mse(train, test, 12) == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("n, exact_max", [(80, 100), (300, 100)])  # Gram-matrix path, randomized path
def test_pca_for_wide_samples_equals_the_covariance_pca(monkeypatch, n, exact_max):
    """Images wider than EXACT_PCA_MAX values (3x64x64 = 12,288) must not build a D x D covariance; the
    other two paths find the same top subspace, so the PCA baseline is the same number."""
    rng = np.random.default_rng(0)
    d, k = 200, 4
    a = rng.normal(size=(n, 6)) @ rng.normal(size=(6, d)) * [[5, 4, 3, 2, 1, 0.5][i % 6] for i in range(d)] \
        + 0.01 * rng.normal(size=(n, d))
    a -= a.mean(0)
    exact = autoencode.top_components(a, k)
    monkeypatch.setattr(autoencode, "EXACT_PCA_MAX", exact_max)
    fast = autoencode.top_components(a, k)
    assert fast.shape == (d, k)
    np.testing.assert_allclose(fast.T @ fast, np.eye(k), atol=1e-8)
    np.testing.assert_allclose(fast @ fast.T, exact @ exact.T, atol=1e-6)  # the same subspace
    train, test = a[: n // 2], a[n // 2:]
    slow_mse = pca_reconstruction_mse(train, test, k)
    monkeypatch.setattr(autoencode, "EXACT_PCA_MAX", 10**9)
    assert pca_reconstruction_mse(train, test, k) == pytest.approx(slow_mse, rel=1e-6)
