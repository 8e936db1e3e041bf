"""Shared fixtures for the training tests: one torch thread (tiny models; and 2 OpenMP threads stall badly
when the 2-core machine is busy), and a factory for Iris configs in a temporary run directory."""

from __future__ import annotations

import pytest
import torch

from .iris_task import IrisConfig

torch.set_num_threads(1)


@pytest.fixture
def iris_cfg(tmp_path):
    def make(**overrides) -> IrisConfig:
        fields = {"out_dir": str(tmp_path / "run"), "batch_size": 16, "lr": 3e-3, "log_every": 5,
                  "progress": "off", "epochs": 5} | overrides
        return IrisConfig(**fields)
    return make
