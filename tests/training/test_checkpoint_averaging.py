"""Checkpoint averaging (training/checkpoint.average_checkpoints): the mean of real saved checkpoints,
tied tensors kept tied, integer tensors kept, and mismatched checkpoints refused with a message."""

import pytest
import torch

from encoderlab.errors import CheckpointError
from encoderlab.training.checkpoint import average_checkpoints, load_model_state, save_checkpoint


def save(path, state):
    return save_checkpoint(path, state, {"step": 1}, {"step": 1})


def test_the_average_of_three_checkpoints_is_their_elementwise_mean(tmp_path):
    torch.manual_seed(0)
    states = []
    for i in range(3):
        table = torch.randn(5, 4)
        states.append({"embeddings.weight": table, "out.weight": table, "bias": torch.randn(4),
                       "position_ids": torch.arange(6)})
        save(tmp_path / f"step-{i}", states[-1])
    averaged = average_checkpoints([tmp_path / f"step-{i}" for i in range(3)])
    expected = (states[0]["bias"] + states[1]["bias"] + states[2]["bias"]) / 3
    assert torch.allclose(averaged["bias"], expected, atol=1e-7) and averaged["bias"].dtype == torch.float32
    assert torch.allclose(averaged["out.weight"], averaged["embeddings.weight"])  # the tied alias averaged alike
    assert not torch.allclose(averaged["bias"], states[2]["bias"])
    assert torch.equal(averaged["position_ids"], torch.arange(6))
    alone = average_checkpoints([tmp_path / "step-1"])["bias"]
    assert torch.equal(alone, load_model_state(tmp_path / "step-1")["bias"])


def test_mismatched_or_missing_checkpoints_are_refused(tmp_path):
    save(tmp_path / "a", {"w": torch.zeros(2), "ids": torch.arange(3)})
    save(tmp_path / "b", {"w": torch.ones(2), "other": torch.zeros(1), "ids": torch.arange(3)})
    save(tmp_path / "c", {"w": torch.ones(2), "ids": torch.arange(3) + 1})
    with pytest.raises(CheckpointError, match="other tensors"):
        average_checkpoints([tmp_path / "a", tmp_path / "b"])
    with pytest.raises(CheckpointError, match="integer tensors cannot be averaged"):
        average_checkpoints([tmp_path / "a", tmp_path / "c"])
    with pytest.raises(CheckpointError, match="save_every"):
        average_checkpoints([])
    (tmp_path / "a" / "model.safetensors").write_bytes(b"corrupt")
    with pytest.raises(CheckpointError, match="corrupt"):
        average_checkpoints([tmp_path / "a"])
