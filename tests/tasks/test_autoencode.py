"""End-to-end autoencoder runs on small slices of the real data, through the CLI and `run_task`, and the
errors a user meets with bad configs and bad arrays."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from encoderlab.artifacts.autoencoder import ArrayEncoder
from encoderlab.cli import main
from encoderlab.config import load_config
from encoderlab.data.arrays import load_mnist
from encoderlab.errors import ConfigError, InputDataError
from encoderlab.tasks.autoencode import AutoencodeConfig, train_autoencoder
from encoderlab.training import run_task

pytestmark = pytest.mark.slow  # the fixtures of this file take many seconds; `make test-fast` skips it

torch.set_num_threads(1)
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
QUICK = ["progress=off", "eval_every=0", "batch_size=64", "warmup_steps=20"]


def run_cli(*args: str) -> int:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    return info.value.code


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "ae"
    code = run_cli("autoencode", "--config", str(CONFIGS / "mnist-ae.yaml"), f"out_dir={out}", "train_limit=2000",
                   "eval_limit=500", "max_steps=250", "lr=3e-3", *QUICK)
    assert code == 0
    return out


def test_mlp_autoencoder_run_beats_the_mean_image_and_writes_everything(ae_run):
    metrics = json.loads((ae_run / "metrics.json").read_text())
    assert metrics["step"] == 250 and metrics["test_samples"] == 500
    assert metrics["test_mse"] < 0.6 * metrics["mean_test_mse"]
    assert 0 < metrics["test_bce"] < 0.25 and metrics["pca_test_mse"] > 0
    for name in ("reconstructions.png", "latent.png", "loss.png", "log.jsonl", "final/model.safetensors",
                 "final/autoencoder.json", "final/config.yaml"):
        assert (ae_run / name).is_file(), name
    assert (ae_run / "latent.png").read_bytes()[:4] == b"\x89PNG"


def test_array_encoder_api_and_encode_cli(ae_run, tmp_path):
    ae = ArrayEncoder.from_dir(ae_run)
    digits = load_mnist().test.x[:7]  # (7, 1, 28, 28)
    codes = ae.encode(digits)
    assert codes.shape == (7, 10) and codes.dtype == np.float32
    np.testing.assert_allclose(ae.encode(digits[:, 0]), codes, atol=1e-6)  # (N, 28, 28) works too
    assert ae.decode(codes).shape == (7, 1, 28, 28)
    path = ae.interpolate(digits[0], digits[1], steps=5)
    assert path.shape == (5, 1, 28, 28)
    np.testing.assert_allclose(path[0], ae.reconstruct(digits[0])[0], atol=1e-5)
    assert ae.score(digits).shape == (7,)
    with pytest.raises(InputDataError, match="needs a VAE"):
        ae.sample(3)
    with pytest.raises(InputDataError, match=r"shape \(784,\).*\(1, 28, 28\)"):
        ae.encode(digits.reshape(7, 784))

    np.save(tmp_path / "digits.npy", digits)
    assert run_cli("encode", "--model", str(ae_run), "--input", str(tmp_path / "digits.npy"),
                   "--output", str(tmp_path / "codes.npy")) == 0
    np.testing.assert_allclose(np.load(tmp_path / "codes.npy"), codes, atol=1e-6)
    bad = digits.copy()
    bad[2, 0, 5, 5] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    assert run_cli("encode", "--model", str(ae_run), "--input", str(tmp_path / "bad.npy"),
                   "--output", str(tmp_path / "x.npy")) == 2


def test_vae_run_reports_importance_sampled_nll(tmp_path):
    metrics = run_task(train_autoencoder, AutoencodeConfig, CONFIGS / "mnist-vae.yaml",
                       [f"out_dir={tmp_path / 'vae'}", "train_limit=2000", "eval_limit=200", "max_steps=150",
                        "kl_warmup_steps=50", "nll_samples=20", "model.hidden=[128]", "model.latent_dim=8",
                        *QUICK])
    assert np.isfinite(metrics["test_nll"]) and metrics["nll_samples"] == 20
    assert 90 < metrics["test_nll"] < 784 * np.log(2)  # learned something, on a believable scale (nats)
    assert metrics["test_nll"] <= metrics["test_neg_elbo"] + 1.0  # the importance bound is the tighter one
    assert (tmp_path / "vae" / "samples.png").is_file()
    assert ArrayEncoder.from_dir(tmp_path / "vae").sample(4).shape == (4, 1, 28, 28)


def test_shuttle_anomaly_run(tmp_path):
    metrics = run_task(train_autoencoder, AutoencodeConfig, CONFIGS / "shuttle-anomaly.yaml",
                       [f"out_dir={tmp_path / 'shuttle'}", "train_limit=4000", "max_steps=300", *QUICK])
    assert metrics["train_samples"] == 4000
    assert metrics["test_auroc"] > 0.95 and metrics["test_ap"] > 0.7
    assert 0 < metrics["test_f1"] <= 1 and (tmp_path / "shuttle" / "scores.png").is_file()


def test_denoising_sparse_conv_options_train(tmp_path):
    metrics = run_task(train_autoencoder, AutoencodeConfig, CONFIGS / "mnist-conv-ae.yaml",
                       [f"out_dir={tmp_path / 'conv'}", "train_limit=256", "eval_limit=64", "max_steps=4",
                        "noise=masking", "noise_level=0.3", "sparsity=0.01", "model.batch_norm=true",
                        "model.dropout=0.1", "model.hidden=[4,8]", "plots=false", *QUICK, "warmup_steps=0"])
    assert np.isfinite(metrics["test_mse"]) and metrics["step"] == 4


def test_iwae_objective_and_denoising_vae_train(tmp_path):
    metrics = run_task(train_autoencoder, AutoencodeConfig, CONFIGS / "mnist-vae-long.yaml",
                       [f"out_dir={tmp_path / 'iwae'}", "train_limit=256", "eval_limit=64", "max_steps=4",
                        "nll_samples=5", "noise=masking", "noise_level=0.2", "model.hidden=[16]", "plots=false",
                        *QUICK, "warmup_steps=0"])
    assert np.isfinite(metrics["test_nll"]) and metrics["step"] == 4


@pytest.mark.parametrize("overrides, message", [
    (["model.latent_dim=0"], "latent_dim=0"),
    (["nll_samples=10"], "only apply to a VAE"),
    (["binarize=true", "model.reconstruction=mse"], "binarize=true gives binary data"),
    (["noise=gaussian"], "noise_level=0 adds no noise"),
    (["model.variational=true", "objective=iwae"], "train_samples >= 2"),
    (["latent=3"], "unknown config key 'latent'"),
])
def test_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(AutoencodeConfig, CONFIGS / "mnist-ae.yaml", overrides)


def test_conv_on_a_table_and_nan_data_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="kind=conv needs image data"):
        train_autoencoder(load_config(AutoencodeConfig, None, ["data=shuttle", "model.kind=conv",
                                                              f"out_dir={tmp_path / 'a'}"]))
    x = np.random.default_rng(0).random((100, 5))
    x[17, 2] = np.nan
    np.save(tmp_path / "nan.npy", x)
    with pytest.raises(InputDataError, match=r"nan.npy\[x\]: 1 NaN/inf values \(first in sample 17\)"):
        train_autoencoder(load_config(AutoencodeConfig, None, [f"data={tmp_path / 'nan.npy'}",
                                                              f"out_dir={tmp_path / 'b'}"]))


def test_user_csv_end_to_end(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)) @ rng.normal(size=(3, 6)) * 10 + 50  # rank-3 data in 6 columns, raw units
    rows = ["a,b,c,d,e,f,label"] + [",".join(f"{v:.5f}" for v in r) + f",{i % 3}" for i, r in enumerate(x)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    metrics = run_task(train_autoencoder, AutoencodeConfig, None,
                       [f"data={tmp_path / 't.csv'}", f"out_dir={tmp_path / 'run'}", "model.hidden=[32]",
                        "model.latent_dim=3", "max_steps=300", "lr=3e-3", *QUICK])  # output/loss: the defaults
    assert metrics["test_mse"] < 0.2 * metrics["mean_test_mse"]  # a 3-d code captures rank-3 data
    assert "test_bce" not in metrics  # a standardised table gets an identity output and MSE, not sigmoid + BCE
    codes = ArrayEncoder.from_dir(tmp_path / "run").encode(x[:4].astype(np.float32))  # raw units in
    assert codes.shape == (4, 3)


@pytest.mark.parametrize("override", ["model.output=sigmoid", "model.reconstruction=bce"])
def test_sigmoid_output_on_a_standardised_table_is_refused(tmp_path, override):
    np.save(tmp_path / "t.npy", np.random.default_rng(0).normal(size=(50, 4)))
    with pytest.raises(ConfigError, match="table columns are standardised"):
        train_autoencoder(load_config(AutoencodeConfig, None, [f"data={tmp_path / 't.npy'}", override,
                                                              f"out_dir={tmp_path / 'run'}"]))
    assert not (tmp_path / "run").exists()


def test_encode_a_csv_by_the_training_column_names(tmp_path):
    """A run trained with label_column= reads new CSVs by column name: label and extra columns ignored,
    columns in any order; a bare array with the label still in it is refused with the column list."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3)) * [1, 10, 100] + [0, 5, -50]
    rows = ["f1,f2,f3,outcome"] + [",".join(f"{v:.6f}" for v in r) + f",{i % 2}" for i, r in enumerate(x)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    run_task(train_autoencoder, AutoencodeConfig, None,
             [f"data={tmp_path / 't.csv'}", "label_column=outcome", f"out_dir={tmp_path / 'run'}",
              "model.hidden=[8]", "model.latent_dim=2", "max_steps=5", "plots=false", *QUICK, "batch_size=16",
              "warmup_steps=0"])
    ae = ArrayEncoder.from_dir(tmp_path / "run")
    expected = ae.encode(x.astype(np.float32))
    shuffled = ["id,f3,outcome,f1,f2"] + [f"{i},{r[2]:.6f},{i % 2},{r[0]:.6f},{r[1]:.6f}" for i, r in enumerate(x)]
    (tmp_path / "new.csv").write_text("\n".join(shuffled) + "\n")
    np.testing.assert_allclose(ae.encode(ae.read_samples(tmp_path / "new.csv")), expected, atol=1e-5)
    assert run_cli("encode", "--model", str(tmp_path / "run"), "--input", str(tmp_path / "new.csv"), "--output",
                   str(tmp_path / "codes.npy")) == 0  # the CLI reads it the same way
    np.testing.assert_allclose(np.load(tmp_path / "codes.npy"), expected, atol=1e-5)
    with_label = np.c_[x, np.arange(60) % 2].astype(np.float32)
    with pytest.raises(InputDataError, match=r"4 values .* 3 columns \['f1', 'f2', 'f3'\] \(the label column "
                                             r"'outcome' is not one\)"):
        ae.encode(with_label)
    (tmp_path / "short.csv").write_text("f1,f3\n1,2\n")
    with pytest.raises(InputDataError, match=r"no column 'f2'; the model was trained on the columns"):
        ae.read_samples(tmp_path / "short.csv")


def test_images_scaled_the_other_way_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (40, 3, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "rgb.npy", raw)
    run_task(train_autoencoder, AutoencodeConfig, None,
             [f"data={tmp_path / 'rgb.npy'}", f"out_dir={tmp_path / 'run'}", "model.kind=conv", "model.hidden=[4]",
              "model.latent_dim=2", "max_steps=3", "plots=false", *QUICK, "batch_size=8", "warmup_steps=0"])
    ae = ArrayEncoder.from_dir(tmp_path / "run")
    assert ae.encode(raw).shape == (40, 2) and ae.encode(raw.astype(np.float32)).shape == (40, 2)  # 0-255 floats
    with pytest.raises(InputDataError, match=r"float pixels in \[0, 1\], but the model was trained on uint8"):
        ae.encode(raw / 255.0)  # already scaled: dividing by 255 again would encode near-black images
    digits = load_mnist().test.x[:4]  # floats in [0, 1]
    np.save(tmp_path / "d.npy", digits)
    run_task(train_autoencoder, AutoencodeConfig, None,
             [f"data={tmp_path / 'd.npy'}", f"out_dir={tmp_path / 'run2'}", "model.hidden=[4]", "model.latent_dim=2",
              "max_steps=1", "plots=false", "baselines=false", *QUICK, "batch_size=2", "warmup_steps=0"])
    with pytest.raises(InputDataError, match=r"pixel values up to 25\d, but the model was trained on images in "
                                             r"\[0, 1\]"):
        ArrayEncoder.from_dir(tmp_path / "run2").encode((digits * 255).round().astype(np.uint8))


def test_a_code_as_wide_as_the_sample_is_flagged(tmp_path, capsys):
    np.save(tmp_path / "t.npy", np.random.default_rng(0).normal(size=(40, 4)))
    args = [f"data={tmp_path / 't.npy'}", "max_steps=1", "plots=false", *QUICK, "batch_size=8", "warmup_steps=0"]
    metrics = run_task(train_autoencoder, AutoencodeConfig, None, [*args, f"out_dir={tmp_path / 'a'}"])  # latent 10
    assert metrics["pca_test_mse"] < 1e-20  # 10 components of 4-d data: an exact copy, nothing compressed
    assert "warning: model.latent_dim=10 >= the 4 values of a sample" in capsys.readouterr().err
    run_task(train_autoencoder, AutoencodeConfig, None, [*args, "model.latent_dim=2", f"out_dir={tmp_path / 'b'}"])
    assert "warning" not in capsys.readouterr().err


def test_anomaly_data_with_few_anomalies(tmp_path):
    rng = np.random.default_rng(0)
    normal, odd = rng.normal(size=(200, 4)), rng.normal(loc=6, size=(4, 4))

    def write(n_odd: int) -> Path:
        rows = ["a,b,c,d,kind"] + [",".join(f"{v:.4f}" for v in r) + ",normal" for r in normal] + \
            [",".join(f"{v:.4f}" for v in r) + ",fraud" for r in odd[:n_odd]]
        (tmp_path / f"{n_odd}.csv").write_text("\n".join(rows) + "\n")
        return tmp_path / f"{n_odd}.csv"

    args = ["label_column=kind", "normal_class=1", "model.latent_dim=2", "max_steps=30", "plots=false", *QUICK,
            "batch_size=16", "warmup_steps=0"]  # text labels: fraud = 0, normal = 1
    metrics = run_task(train_autoencoder, AutoencodeConfig, None, [f"data={write(4)}", f"out_dir={tmp_path / 'a'}",
                                                                   *args])
    assert metrics["test_auroc"] == 1.0  # one fraud row reached the test split, far from the normal ones
    with pytest.raises(InputDataError, match=r"the validation split has no anomalies \(labels other than "
                                             r"normal_class=1\).*at least 3 rows"):
        run_task(train_autoencoder, AutoencodeConfig, None, [f"data={write(2)}", f"out_dir={tmp_path / 'b'}", *args])
    assert not (tmp_path / "b").exists()  # refused before training: no half-written run


def test_encoding_arrays_with_a_text_model_says_which_model_is_needed(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((3, 4), np.float32))
    assert run_cli("encode", "--model", "minilm", "--input", str(tmp_path / "x.npy"), "--output",
                   str(tmp_path / "codes.npy")) == 2
    assert "only an autoencoder run encodes, and --model 'minilm' is not one" in capsys.readouterr().err
    assert not (tmp_path / "codes.npy").exists()


def test_a_folder_of_photos_of_different_sizes_end_to_end(tmp_path, capsys):
    """image_size= lets autoencode train on a user's photos of several sizes; encode, predict and export then
    take a new photo of any size or mode (a grey photo for a colour model failed with a shape error)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for i, (size, mode) in enumerate([((40, 28), "RGB"), ((64, 64), "RGBA"), ((20, 30), "L")] * 8):
        (tmp_path / "photos").mkdir(exist_ok=True)
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).convert(mode).save(tmp_path / "photos" / f"{i:02d}.png")
    out = tmp_path / "run"
    assert run_cli("autoencode", f"data={tmp_path / 'photos'}", "model.kind=conv", "image_size=16", "max_steps=2",
                   "batch_size=8", "threads=1", "plots=false", "baselines=false", *QUICK[:2], f"out_dir={out}") == 0
    new = tmp_path / "new grey photo.jpg"
    Image.fromarray(rng.integers(0, 256, (50, 70), dtype=np.uint8)).save(new)
    assert run_cli("encode", "--model", str(out), "--input", str(new), "--output", str(tmp_path / "c.npy")) == 0
    encoder = ArrayEncoder.from_dir(out)
    assert np.load(tmp_path / "c.npy").shape == (1, encoder.latent_dim) and encoder.sample_shape == (3, 16, 16)
    capsys.readouterr()
    assert run_cli("predict", "--model", str(out), "--input", str(tmp_path / "photos")) == 0
    assert len(capsys.readouterr().out.splitlines()) == 24
