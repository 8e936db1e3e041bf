"""ONNX export of autoencoder runs: a table autoencoder on a user's CSV (per-column scaling inside the graph) and
a convolutional VAE on MNIST (BCE score), checked through onnxruntime against `encode` and `score`."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from encoderlab.artifacts.autoencoder import ArrayEncoder
from encoderlab.cli import main
from encoderlab.data.arrays import load_mnist
from encoderlab.errors import InputDataError
from encoderlab.tasks.autoencode import AutoencodeConfig, train_autoencoder
from encoderlab.training import run_task

ort = pytest.importorskip("onnxruntime")
IRIS = Path(__file__).resolve().parents[1] / "data" / "iris.csv"
QUICK = ["progress=off", "eval_every=0", "warmup_steps=0", "threads=1", "plots=false"]


def exported(run: Path, out: Path) -> tuple[ort.InferenceSession, dict]:
    with pytest.raises(SystemExit) as info:
        main(["export", "--model", str(run), "--output", str(out)])
    assert info.value.code == 0
    return ort.InferenceSession(str(out / "model.onnx")), json.loads((out / "onnx_export.json").read_text())


def test_table_autoencoder_takes_raw_rows_and_matches_encode_and_score(tmp_path):
    torch.set_num_threads(1)
    shutil.copy(IRIS, tmp_path / "flowers.csv")
    run_task(train_autoencoder, AutoencodeConfig, None,
             [f"data={tmp_path / 'flowers.csv'}", "label_column=species", "model.latent_dim=2", "max_steps=40",
              "batch_size=16", f"out_dir={tmp_path / 'run'}", *QUICK])
    session, info = exported(tmp_path / "run", tmp_path / "onnx")
    assert info["inputs"]["input"] == ["batch", 4] and info["outputs"] == ["code", "reconstruction", "score"]
    ae = ArrayEncoder.from_dir(tmp_path / "run")
    raw = ae.read_samples(tmp_path / "flowers.csv")[::7]  # raw centimetres: the scaling is inside the graph
    code, reconstruction, score = session.run(None, {"input": raw})
    np.testing.assert_allclose(code, ae.encode(raw), atol=1e-5)
    np.testing.assert_allclose(score, ae.score(raw), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(reconstruction, ae.scaling.invert(ae.reconstruct(raw)), atol=1e-4)
    assert np.abs(reconstruction - raw).mean() < np.abs(raw - raw.mean(0)).mean()  # near the input, in cm
    # its training data gone: named as such (was "input file ... does not exist", as if --output were wrong)
    (tmp_path / "flowers.csv").unlink()
    from encoderlab.compression.export_onnx_autoencoder import export_autoencoder_onnx_dir

    with pytest.raises(InputDataError, match=r"held-out samples, read from its training data '.*flowers.csv', "
                                             r"which is not there"):
        export_autoencoder_onnx_dir(tmp_path / "run", tmp_path / "onnx2")
    assert not (tmp_path / "onnx2").exists()


def test_conv_vae_on_digits_and_bad_output(tmp_path):
    torch.set_num_threads(1)
    run_task(train_autoencoder, AutoencodeConfig, None,
             ["data=mnist", "model.kind=conv", "model.variational=true", "model.latent_dim=4", "train_limit=256",
              "eval_limit=64", "max_steps=5", "batch_size=32", f"out_dir={tmp_path / 'vae'}", *QUICK])
    session, info = exported(tmp_path / "vae", tmp_path / "onnx")
    assert info["max_rel_score"] <= 1e-4  # the BCE score used to come out NaN from onnxruntime
    # the parity numbers are relative differences (the CLI says so); their keys used to say max_abs_
    assert not [k for k in info if k.startswith("max_abs")] and info["max_rel_code"] <= info["tolerance"]
    ae = ArrayEncoder.from_dir(tmp_path / "vae")
    digits = ae.scaling.invert(load_mnist().test.x[:5])  # held-out digits, in the units the run read them
    code, _, score = session.run(None, {"input": digits.astype(np.float32)})
    np.testing.assert_allclose(code, ae.encode(digits), atol=1e-5)
    np.testing.assert_allclose(score, ae.score(digits), rtol=1e-4)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputDataError, match="is a file"):
        from encoderlab.compression.export_onnx_autoencoder import export_autoencoder_onnx_dir

        export_autoencoder_onnx_dir(tmp_path / "vae", tmp_path / "file")
    with pytest.raises(InputDataError, match=r"drop the .onnx, e.g. --output .*model-onnx"):
        export_autoencoder_onnx_dir(tmp_path / "vae", tmp_path / "model.onnx")  # was: model.onnx/model.onnx
    assert not (tmp_path / "model.onnx").exists()
    with pytest.raises(InputDataError, match=r"'.*file' is a file, not a folder"):  # was a NotADirectoryError
        export_autoencoder_onnx_dir(tmp_path / "vae", tmp_path / "file" / "onnx")


def test_bce_of_saturated_logits_exports_without_nan(tmp_path):
    """A trained model's background pixels have logits far below 0; ONNX's translation of the fused op gave
    NaN there (log 0 · 0), which made the score of every real digit NaN."""
    from encoderlab.models.autoencoder import bce_with_logits

    class BCE(torch.nn.Module):
        def forward(self, logits, x):
            return bce_with_logits(logits, x)

    logits = torch.tensor([[-120.0, -30.0, -1.0, 0.0, 2.0, 40.0, 150.0]])
    x = torch.tensor([[0.0, 0.0, 0.3, 0.5, 1.0, 1.0, 0.0]])
    torch.onnx.export(BCE(), (logits, x), str(tmp_path / "bce.onnx"), dynamo=False, input_names=["l", "x"],
                      opset_version=17)
    (got,) = ort.InferenceSession(str(tmp_path / "bce.onnx")).run(None, {"l": logits.numpy(), "x": x.numpy()})
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
