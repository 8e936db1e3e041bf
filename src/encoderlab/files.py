"""Atomic file writes: a reader sees either the old file or the complete new one, never half a file.

The recipe: write to a temporary file in the same directory, flush and fsync it, `os.replace` it over the
target (atomic on POSIX and Windows), then fsync the directory so the rename itself survives a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _new_file_mode() -> int:
    """The permissions `open()` would give a new file: rw for everyone, minus the umask. (mkstemp makes its
    temporary file private, 0600, which would otherwise stick to every output after the rename.)"""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def file_in_the_way(path: str | os.PathLike) -> Path | None:
    """The existing file that stops `path` from being a directory or from being created inside one: `path`
    itself or its nearest existing ancestor, when that is a file; None when nothing is in the way."""
    path = Path(path)
    nearest = next((p for p in (path, *path.parents) if p.exists()), None)
    return nearest if nearest is not None and not nearest.is_dir() else None


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file for writing; on success it atomically replaces `path`.

    If the body raises, the temporary file is removed and `path` is left untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write supports mode 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as handle:
            if hasattr(os, "fchmod"):  # POSIX
                os.fchmod(handle.fileno(), _new_file_mode())
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def atomic_save_npy(path: str | os.PathLike, array) -> None:
    """Save a NumPy array as .npy atomically (np.save would leave a partial file if interrupted)."""
    import numpy as np

    with atomic_write(path, "wb") as handle:
        np.save(handle, np.asarray(array), allow_pickle=False)
