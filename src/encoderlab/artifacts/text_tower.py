"""Saving and loading a model that holds one of our text encoders as its `text` submodule (the multimodal
kinds): the text tower goes to `text/` in the Hugging Face layout with its tokenizer (so it is a text
encoder of its own, e.g. for `encoderlab encode`), every other weight to `model.safetensors`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors

from ..errors import CheckpointError
from ..files import atomic_write_bytes, atomic_write_json
from ..interop.hf_bert import load_hf_bert, save_hf_bert
from ..models.bert import BertModel
from ..tokenization import TextTokenizer
from .runs import model_dir

I = TypeVar("I")
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


class InfoFile:
    """Mixin of the kinds' metadata dataclasses: `to_dict()`, and `from_dict()` naming a missing key."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> Any:
        fields = dataclasses.fields(cls)
        required = [f.name for f in fields if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        missing = [k for k in required if not isinstance(raw, dict) or k not in raw]
        if missing:
            raise CheckpointError(f"{where} has no {', '.join(missing)}: the file is damaged or from another tool; "
                                  "retrain the model or restore the file")
        names = {f.name for f in fields}
        return cls(**{k: v for k, v in raw.items() if k in names})


def write_info(directory: Path, info_file: str, info: InfoFile) -> None:
    """The kind's metadata dataclass as directory/info_file (the file whose name marks the kind)."""
    atomic_write_json(directory / info_file, info.to_dict())


def read_info(path: str | Path, info_file: str, info_cls: type[I], what: str) -> tuple[Path, I]:
    """(the model directory: `path` or its final/, its metadata); errors say what was expected."""
    directory = model_dir(path, info_file)
    if directory is None:
        raise CheckpointError(f"{str(path)!r} is not {what}: no {info_file} there or in its final/; pass the "
                              "out_dir of the run that trained it")
    where = str(directory / info_file)
    try:
        raw = json.loads((directory / info_file).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{where!r} is damaged ({exc}); retrain or restore it") from exc
    return directory, info_cls.from_dict(raw, where)
