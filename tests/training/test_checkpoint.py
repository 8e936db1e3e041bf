import pytest
import torch
from torch import nn

from encoderlab.errors import CheckpointError
from encoderlab.training.checkpoint import (
    latest_valid_checkpoint,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
    step_dir,
)
from encoderlab.training.metrics_log import read_log

from .iris_task import make_trainer


def tied_model() -> nn.Module:
    model = nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 5))
    model[1].weight = model[0].weight  # tied input/output embeddings, as in BERT's MLM head
    return model


def test_round_trip_with_tied_weights_and_trainer_state(tmp_path):
    model = tied_model()
    state = {"step": 7, "rng": torch.get_rng_state(), "nested": {"x": [1, 2.5, None]}}
    path = save_checkpoint(step_dir(tmp_path, 7), model.state_dict(), state, {"step": 7, "metrics": {}})
    weights, loaded, manifest = load_checkpoint(path)
    assert manifest["aliases"] == {"1.weight": "0.weight"}
    for name, tensor in model.state_dict().items():
        assert torch.equal(weights[name], tensor), name
    assert loaded["step"] == 7 and torch.equal(loaded["rng"], state["rng"]) and loaded["nested"] == state["nested"]


def write_three(tmp_path) -> list:
    model = nn.Linear(2, 2)
    return [save_checkpoint(step_dir(tmp_path, s), model.state_dict(), {"step": s}, {"step": s})
            for s in (10, 20, 30)]


def test_truncated_file_is_detected_and_the_previous_checkpoint_used(tmp_path):
    paths = write_three(tmp_path)
    weights = paths[-1] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-7])  # a truncated write
    warnings = []
    assert latest_valid_checkpoint(tmp_path, warn=warnings.append) == paths[1]
    assert "step-00000030" in warnings[0] and "model.safetensors is corrupt" in warnings[0]
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(paths[-1])


def test_flipped_byte_and_missing_manifest_are_detected(tmp_path):
    paths = write_three(tmp_path)
    state = paths[-1] / "trainer_state.pt"
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different content: only the checksum can tell
    state.write_bytes(bytes(data))
    (paths[1] / "manifest.json").unlink()  # a save killed before its manifest
    warnings = []
    assert latest_valid_checkpoint(tmp_path, warn=warnings.append) == paths[0]
    assert "sha256" in warnings[0] and "incomplete" in warnings[1]


def test_prune_keeps_last_k_and_the_protected_best(tmp_path):
    paths = write_three(tmp_path)
    prune_checkpoints(tmp_path, keep_last=1, protect=paths[0])
    assert list_checkpoints(tmp_path) == [paths[0], paths[2]]


def test_trainer_resumes_from_the_previous_checkpoint_when_the_latest_is_corrupt(iris_cfg, capsys):
    cfg = iris_cfg(max_steps=20, save_every=5, keep_last=3, log_every=1)
    make_trainer(cfg).fit()
    (step_dir(cfg.out_dir, 20) / "model.safetensors").write_bytes(b"garbage")
    trainer = make_trainer(iris_cfg(max_steps=20, save_every=5, keep_last=3, log_every=1, resume=True))
    result = trainer.fit()
    err = capsys.readouterr().err
    assert "skipping invalid checkpoint" in err and "resumed from" in err and "step-00000015" in err
    assert result.step == 20 and latest_valid_checkpoint(cfg.out_dir).name == "step-00000020"
    assert [r["step"] for r in read_log(cfg.out_dir) if "loss" in r] == list(range(1, 21))  # no duplicates
