"""Bulk encoding of corpora that do not fit in memory: stream a text file, write sharded .npy, resume, scale out.

    encoderlab encode --model minilm --input corpus.jsonl --output vectors/            # one process
    torchrun --nproc_per_node=4 -m encoderlab encode --input corpus.jsonl --output vectors/   # four ranks

The input is read as a stream; every `shard_rows` consecutive rows are one shard, embedded with
`TextEncoder.encode` and written atomically as `OUT/shards/shard-000123.npy`. A shard on disk is done: kill the
run at any moment and run the same command again, and it skips the finished shards (the shard that was being
written is redone). Under torchrun, rank r embeds the shards k with k % world_size == r; every rank reads the
stream (reading is cheap, the encoder is not). When all shards exist, rank 0 merges them in input order into one
`OUT/embeddings.npy` (N, d) float32, written through a memory map (never whole in memory), and deletes the
shards. `OUT/manifest.json` records the model, the input and the settings: re-running with other ones is refused
instead of mixing two encodings in one array.

Every shard is the same computation whichever process runs it and whenever, so a resumed or multi-rank run
gives the same array as one uninterrupted process (bit for bit with the same threads per process).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..artifacts.text_encoder import TextEncoder
from ..data.text_stream import check_text_file, count_rows, iter_texts
from ..errors import InputDataError
from ..files import atomic_save_npy, atomic_write_json
from ..training.distributed import barrier, init_distributed, shutdown_distributed

MANIFEST = "manifest.json"
MERGED = "embeddings.npy"
SHARDS = "shards"


@dataclass
class BulkManifest:
    """OUT/manifest.json: what is being encoded and how; a re-run must match it to continue."""

    model: str
    """The --model as given (an alias or a path)."""
    input: str
    """The input file's absolute path."""
    input_bytes: int
    """The input's size when the encoding started: a changed file is not continued."""
    text_field: str
    shard_rows: int
    dim: int
    pooling: str
    normalize: bool
    max_length: int
    precision: str
    rows: int | None = None
    """Input rows, known once the whole input has been read."""
    complete: bool = False
    """OUT/embeddings.npy holds every row."""

    def same_work(self, other: BulkManifest) -> list[str]:
        """The settings where `other` differs (progress fields aside)."""
        skip = {"rows", "complete"}
        return [f.name for f in dataclasses.fields(self)
                if f.name not in skip and getattr(self, f.name) != getattr(other, f.name)]


@dataclass
class BulkResult:
    output: Path
    """OUT/embeddings.npy."""
    rows: int
    dim: int
    shards_encoded: int
    """Shards this process embedded in this run (the others were on disk already, or other ranks')."""
    shards_skipped: int


def shard_path(out: Path, k: int) -> Path:
    return out / SHARDS / f"shard-{k:06d}.npy"


def shards_of(texts: Iterator[str], shard_rows: int) -> Iterator[list[str]]:
    shard: list[str] = []
    for text in texts:
        shard.append(text)
        if len(shard) == shard_rows:
            yield shard
            shard = []
    if shard:
        yield shard


def finished(path: Path, rows: int, dim: int) -> bool:
    """A shard file that holds exactly `rows` x `dim` float32 (written atomically, so present means whole)."""
    if not path.is_file():
        return False
    try:
        array = np.load(path, mmap_mode="r")
    except (ValueError, OSError):
        return False
    return array.shape == (rows, dim) and array.dtype == np.float32


def read_manifest(out: Path) -> BulkManifest | None:
    path = out / MANIFEST
    if not path.is_file():
        return None
    try:
        return BulkManifest(**json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError) as exc:
        raise InputDataError(f"{str(path)!r} is damaged ({exc}); delete {str(out)!r} and run again") from exc


def start_or_continue(out: Path, wanted: BulkManifest, is_main: bool) -> BulkManifest:
    """The manifest to work under: a new one, or the one on disk if it describes the same work."""
    found = read_manifest(out)
    if found is not None:
        differs = found.same_work(wanted)
        if differs:
            changes = ", ".join(f"{k}: {getattr(found, k)!r} -> {getattr(wanted, k)!r}" for k in differs)
            raise InputDataError(f"{str(out)!r} holds an encoding made with other settings ({changes}); continue it "
                                 "with the same ones, or pass another --output")
        return found
    if out.exists() and not out.is_dir():
        raise InputDataError(f"--output {str(out)!r} is a file; bulk encoding writes a directory (or give a .npy "
                             "path to write one array in memory)")
    if out.is_dir() and any(out.iterdir()) and is_main:
        raise InputDataError(f"--output {str(out)!r} is a directory with other files and no {MANIFEST}; pass a new "
                             "or empty directory")
    if is_main:
        atomic_write_json(out / MANIFEST, dataclasses.asdict(wanted))
    return wanted


def bulk_encode(input: str | Path, output: str | Path, model: str | TextEncoder = "minilm", *,
                text_field: str = "text", shard_rows: int = 10_000, batch_size: int = 32, pooling: str | None = None,
                normalize: bool | None = None, max_length: int | None = None, precision: str = "fp32",
                device: str = "cpu", progress: bool | None = None) -> BulkResult:
    """Embed every text of `input` into OUTPUT/embeddings.npy, shard by shard, resumable; under torchrun each rank
    takes its share. See the module docstring."""
    if shard_rows < 1:
        raise InputDataError(f"--shard-rows {shard_rows} must be at least 1")
    input_path = check_text_file(input).resolve()
    out = Path(output)
    encoder = model if isinstance(model, TextEncoder) else TextEncoder.from_pretrained(model, device=device)
    model_name = str(model) if not isinstance(model, TextEncoder) else "(in memory)"
    dist = init_distributed()
    try:
        wanted = BulkManifest(model=model_name, input=str(input_path), input_bytes=input_path.stat().st_size,
                              text_field=text_field, shard_rows=shard_rows, dim=encoder.dim,
                              pooling=pooling or encoder.pooling,
                              normalize=encoder.normalize if normalize is None else normalize,
                              max_length=min(max_length or encoder.max_seq_length, encoder.bert.cfg.max_positions),
                              precision=precision)
        manifest = start_or_continue(out, wanted, dist.is_main)
        if manifest.complete and (out / MERGED).is_file():
            return BulkResult(out / MERGED, int(manifest.rows or 0), manifest.dim, 0, 0)
        barrier()  # rank 0 has written the manifest

        total = count_rows(input_path)
        show = sys.stderr.isatty() if progress is None else progress
        encoded = skipped = rows = 0
        with tqdm(total=total, desc=f"encode (rank {dist.rank})" if dist.enabled else "encode", unit="text",
                  disable=not show or not dist.is_main, smoothing=0.05) as bar:
            for k, texts in enumerate(shards_of(iter_texts(input_path, text_field), shard_rows)):
                rows += len(texts)
                if k % dist.world_size == dist.rank:
                    path = shard_path(out, k)
                    if finished(path, len(texts), encoder.dim):
                        skipped += 1
                    else:
                        vectors = encoder.encode(texts, batch_size=batch_size, pooling=manifest.pooling,
                                                 normalize=manifest.normalize, max_length=manifest.max_length,
                                                 precision=precision, show_progress=False)
                        atomic_save_npy(path, vectors)
                        encoded += 1
                bar.update(len(texts))
        if rows == 0:
            raise InputDataError(f"input file {str(input_path)!r} holds no texts; give it at least one")
        barrier()  # every shard is on disk
        if dist.is_main:
            merge(out, rows, manifest)
        barrier()
        return BulkResult(out / MERGED, rows, encoder.dim, encoded, skipped)
    finally:
        shutdown_distributed()


def merge(out: Path, rows: int, manifest: BulkManifest) -> None:
    """The shards, in input order, into OUT/embeddings.npy through a memory map; then the manifest says complete
    and the shards go."""
    n_shards = -(-rows // manifest.shard_rows)
    missing = [k for k in range(n_shards)
               if not finished(shard_path(out, k), min(manifest.shard_rows, rows - k * manifest.shard_rows),
                               manifest.dim)]
    if missing:
        raise InputDataError(f"{str(out)!r}: shards {missing[:5]} are missing or damaged; run the command again to "
                             "encode them")
    partial = out / f".{MERGED}.partial"
    merged = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=(rows, manifest.dim))
    for k in range(n_shards):
        start = k * manifest.shard_rows
        shard = np.load(shard_path(out, k), mmap_mode="r")
        merged[start:start + len(shard)] = shard
    merged.flush()
    del merged
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, out / MERGED)
    atomic_write_json(out / MANIFEST, dataclasses.asdict(dataclasses.replace(manifest, rows=rows, complete=True)))
    for k in range(n_shards):
        with contextlib.suppress(FileNotFoundError):
            shard_path(out, k).unlink()
    with contextlib.suppress(OSError):
        (out / SHARDS).rmdir()
