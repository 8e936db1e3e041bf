"""Every plot writes a valid PNG, for images and tables, for codes of 1, 2 and many dimensions."""

import numpy as np
import pytest

from encoderlab.report import autoencoder_plots as plots

PNG = b"\x89PNG"


def test_image_grid_layout():
    images = np.zeros((5, 1, 4, 3), dtype=np.float32)
    images[4] = 1.0
    grid = plots.image_grid(images, n_cols=2)
    assert grid.shape == (3 * 5 - 1, 2 * 4 - 1)
    assert grid[10:14, 0:3].min() == 1.0  # the 5th image sits in row 3, column 1


@pytest.mark.parametrize("channels, shape", [(1, (4, 5)), (2, (4, 5)), (3, (4, 5, 3)), (4, (4, 5, 3))])
def test_image_grid_of_any_channel_count_is_a_picture(tmp_path, channels, shape):
    images = np.random.default_rng(0).random((3, channels, 4, 5)).astype(np.float32)
    grid = plots.image_grid(images[:1], n_cols=1)
    assert grid.shape == shape
    np.testing.assert_array_equal(grid if channels < 3 else grid[..., 0], images[0, 0])
    assert plots.plot_reconstructions(images, images, tmp_path / "r.png").read_bytes()[:4] == PNG


@pytest.mark.parametrize("n", [100, 1])  # one code: a test split of a single sample (a tiny user file)
@pytest.mark.parametrize("dim", [1, 2, 7])
def test_latent_projection(dim, n, tmp_path):
    codes = np.random.default_rng(0).normal(size=(n, dim))
    xy, how = plots.project_2d(codes)
    assert xy.shape == (n, 2) and (how == "z") == (dim <= 2)
    assert plots.plot_latent(codes, None, tmp_path / "latent.png").read_bytes()[:4] == PNG


@pytest.mark.slow
def test_every_plot_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    codes, labels = rng.normal(size=(100, 5)), rng.integers(0, 10, 100)
    written = [
        plots.plot_latent(codes, labels, tmp_path / "latent.png"),
        plots.plot_latent(codes[:, :2], None, tmp_path / "latent_unlabelled.png"),
        plots.plot_reconstructions(rng.random((12, 1, 8, 8)), rng.random((12, 1, 8, 8)), tmp_path / "r.png"),
        plots.plot_reconstructions(rng.random((12, 9)), rng.random((12, 9)), tmp_path / "table.png"),
        plots.plot_samples(rng.random((15, 3, 8, 8)), tmp_path / "s.png"),
        plots.plot_loss_curves([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0, "eval_loss": 1.5}],
                               tmp_path / "loss.png"),
        plots.plot_score_histogram(rng.random(100) + 0.1, labels % 2, 0.5, tmp_path / "h.png"),
        plots.plot_score_histogram(rng.normal(size=100), labels % 2, -0.1, tmp_path / "h2.png"),
    ]
    for path in written:
        assert path.read_bytes()[:4] == PNG
