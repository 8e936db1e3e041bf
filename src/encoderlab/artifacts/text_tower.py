"""Saving and loading a model that holds one of our text encoders as its `text` submodule (the multimodal
kinds): the text tower goes to `text/` in the Hugging Face layout with its tokenizer (so it is a text
encoder of its own, e.g. for `encoderlab encode`), every other weight to `model.safetensors`."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors

from ..errors import CheckpointError
from ..files import atomic_write_bytes
from ..interop.hf_bert import load_hf_bert, save_hf_bert
from ..models.bert import BertModel
from ..tokenization import TextTokenizer

TEXT_DIR = "text"
WEIGHTS_FILE = "model.safetensors"


def save_with_text_tower(model: torch.nn.Module, tokenizer: TextTokenizer | None, directory: Path) -> None:
    """`model.text` (if any) to directory/text/, the rest of the state dict to directory/model.safetensors."""
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("text.")}
    atomic_write_bytes(directory / WEIGHTS_FILE, save_safetensors(state))
    if getattr(model, "text", None) is not None:
        save_hf_bert(model.text, directory / TEXT_DIR)
        tokenizer.save(directory / TEXT_DIR)


def load_text_tower(directory: Path) -> tuple[BertModel, TextTokenizer]:
    return load_hf_bert(directory / TEXT_DIR), TextTokenizer.from_dir(directory / TEXT_DIR)


def load_state(directory: Path, text: BertModel | None) -> dict[str, torch.Tensor]:
    """The full state dict: model.safetensors plus the text tower's weights under `text.`."""
    try:
        state = load_file(directory / WEIGHTS_FILE)
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"cannot read {str(directory / WEIGHTS_FILE)!r}: {exc}; retrain or restore it") from exc
    if text is not None:
        state |= {f"text.{k}": v for k, v in text.state_dict().items()}
    return state
