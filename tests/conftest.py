"""Shared fixtures: the bundled all-MiniLM-L6-v2 checkpoint and the reference implementations."""

from __future__ import annotations

import os
import warnings

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore", category=FutureWarning)


@pytest.fixture(scope="session")
def minilm_dir():
    from encoderlab.artifacts.aliases import resolve_model_path

    return resolve_model_path("minilm")


@pytest.fixture(scope="session")
def minilm(minilm_dir):
    from encoderlab import TextEncoder

    return TextEncoder.from_pretrained(minilm_dir)


@pytest.fixture(scope="session")
def hf_minilm(minilm_dir):
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    return transformers.BertModel.from_pretrained(str(minilm_dir)).eval()
