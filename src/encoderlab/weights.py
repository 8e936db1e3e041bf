"""Weights files: a state dict as one safetensors file, written atomically, read back with a clear error.

Tied tensors (an MLM decoder sharing the word embeddings) share memory, which safetensors refuses: one copy is
stored and the others are recorded as aliases where the caller needs them (training checkpoints do).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save as save_safetensors

from .errors import CheckpointError
from .files import atomic_write_bytes


def dedupe_tied(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """safetensors refuses tensors sharing memory (tied embeddings); keep one, record the others as aliases."""
    unique: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, tensor in state.items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape),
               tuple(tensor.stride()), tensor.dtype)
        if tensor.numel() and key in seen:
            aliases[name] = seen[key]
        else:
            seen[key] = name
            unique[name] = tensor.detach().cpu().contiguous()
    return unique, aliases


def save_weights(path: str | Path, state: dict[str, torch.Tensor]) -> None:
    """A state dict as one safetensors file, written atomically (tied tensors stored once)."""
    tensors, _ = dedupe_tied(state)
    atomic_write_bytes(path, save_safetensors(tensors))


def load_weights(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """A safetensors file written by `save_weights`; a missing or damaged file is a CheckpointError naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(Path(path), device=str(device))
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc


def load_module(module: torch.nn.Module, path: Path, missing: str, fits: str) -> None:
    """Load the weights file a saved model must have into `module`, strictly. A missing file raises
    `missing`; weights of other shapes or names say the file does not fit `fits`."""
    if not path.is_file():
        raise CheckpointError(missing)
    try:
        module.load_state_dict(load_weights(path), strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{str(path)!r} does not fit {fits}: {exc}") from exc
