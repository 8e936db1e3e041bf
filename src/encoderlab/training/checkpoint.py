"""Resumable checkpoints: atomic, checksummed, rotated.

Layout of one checkpoint, `OUT_DIR/checkpoints/step-00001200/`:

    model.safetensors    weights (tied tensors stored once; aliases listed in the manifest)
    trainer_state.pt     optimizer, grad scaler, RNG states, data position, counters
                         (torch.save; loaded with weights_only=True, so no pickled code)
    manifest.json        sha256 + size of both files, step, metrics, config -- written LAST

Every file is written atomically (temp file, fsync, rename). A checkpoint counts only if its manifest
exists and both checksums match, so a process killed mid-save (or a disk that truncated a file) leaves
an invalid checkpoint that `latest_valid_checkpoint` reports and skips, falling back to the previous one.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from ..errors import CheckpointError
from ..files import atomic_write_bytes, atomic_write_json
from ..weights import dedupe_tied

MODEL_FILE = "model.safetensors"
STATE_FILE = "trainer_state.pt"
MANIFEST_FILE = "manifest.json"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def checkpoint_root(out_dir: str | Path) -> Path:
    return Path(out_dir) / "checkpoints"


def step_dir(out_dir: str | Path, step: int) -> Path:
    return checkpoint_root(out_dir) / f"step-{step:08d}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_checkpoint(path: Path, model_state: dict[str, torch.Tensor], trainer_state: dict[str, Any],
                    meta: dict[str, Any]) -> Path:
    """Write a checkpoint directory; the manifest (with checksums) goes last and marks it complete."""
    if path.exists():  # a leftover from a save interrupted before its manifest: start clean
        shutil.rmtree(path)
    path.mkdir(parents=True)
    tensors, aliases = dedupe_tied(model_state)
    model_bytes = save_safetensors(tensors)
    buffer = io.BytesIO()
    torch.save(trainer_state, buffer)
    state_bytes = buffer.getvalue()
    atomic_write_bytes(path / MODEL_FILE, model_bytes)
    atomic_write_bytes(path / STATE_FILE, state_bytes)
    files = {name: {"sha256": _sha256(data), "bytes": len(data)}
             for name, data in ((MODEL_FILE, model_bytes), (STATE_FILE, state_bytes))}
    atomic_write_json(path / MANIFEST_FILE, {"format": 1, "files": files, "aliases": aliases, **meta})
    return path


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} is incomplete: no {MANIFEST_FILE} (the save was "
                              "interrupted)") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"checkpoint {path}: {MANIFEST_FILE} is not valid JSON ({exc})") from exc


def _read_verified(path: Path, manifest: dict[str, Any], name: str) -> bytes:
    expected = manifest["files"][name]
    try:
        data = (path / name).read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path}: {name} is missing") from None
    if len(data) != expected["bytes"] or _sha256(data) != expected["sha256"]:
        raise CheckpointError(f"checkpoint {path}: {name} is corrupt ({len(data)} bytes, expected "
                              f"{expected['bytes']}; sha256 mismatch)")
    return data


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """(model state, trainer state, manifest) of a checkpoint, after verifying both checksums."""
    manifest = read_manifest(path)
    model_state = load_model_state(path)
    state_bytes = _read_verified(path, manifest, STATE_FILE)
    trainer_state = torch.load(io.BytesIO(state_bytes), weights_only=True)
    return model_state, trainer_state, manifest


def load_model_state(path: Path) -> dict[str, torch.Tensor]:
    """The model weights of a checkpoint (tied aliases restored), after verifying their checksum."""
    manifest = read_manifest(path)
    model_state = load_safetensors(_read_verified(path, manifest, MODEL_FILE))
    for alias, source in manifest["aliases"].items():
        model_state[alias] = model_state[source]
    return model_state


def average_checkpoints(paths: list[Path]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the model weights of `paths` (Vaswani et al. 2017, section 6.1: the last
    few checkpoints of a run, averaged, usually beat the last one alone). Floating tensors are averaged in
    float64 and cast back; integer tensors (counters, index buffers) must agree and are kept."""
    if not paths:
        raise CheckpointError("no checkpoints to average; save some with save_every=N")
    states = [load_model_state(p) for p in paths]
    names = set(states[0])
    for path, state in zip(paths[1:], states[1:], strict=True):
        if set(state) != names:
            raise CheckpointError(f"checkpoint {path} holds other tensors than {paths[0]}; average checkpoints "
                                  "of one run")
    averaged = {}
    for name, first in states[0].items():
        if first.is_floating_point():
            total = sum(state[name].double() for state in states)
            averaged[name] = (total / len(states)).to(first.dtype)
        else:
            if any(not torch.equal(state[name], first) for state in states[1:]):
                raise CheckpointError(f"tensor {name} ({first.dtype}) differs between checkpoints; integer "
                                      "tensors cannot be averaged")
            averaged[name] = first
    return averaged


def list_checkpoints(out_dir: str | Path) -> list[Path]:
    """Checkpoint directories (valid or not), oldest step first."""
    root = checkpoint_root(out_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_valid_checkpoint(out_dir: str | Path, warn: Callable[[str], None] = print) -> Path | None:
    """The newest checkpoint whose manifest and checksums verify; each rejected one is reported via `warn`."""
    for path in reversed(list_checkpoints(out_dir)):
        try:
            manifest = read_manifest(path)
            for name in (MODEL_FILE, STATE_FILE):
                _read_verified(path, manifest, name)
        except CheckpointError as exc:
            warn(f"skipping invalid checkpoint: {exc}; falling back to the previous one")
            continue
        return path
    return None


def prune_checkpoints(out_dir: str | Path, keep_last: int, protect: Path | None = None) -> None:
    """Delete all but the `keep_last` newest checkpoints, never deleting `protect` (the best one)."""
    for path in list_checkpoints(out_dir)[:-keep_last]:
        if protect is None or path.resolve() != protect.resolve():
            shutil.rmtree(path, ignore_errors=True)
