"""Run logging: one JSON line per logged step in OUT_DIR/log.jsonl, optional TensorBoard, and progress.

Progress goes to stderr as a tqdm bar (loss, lr, throughput, ETA) on a terminal, and as plain periodic
lines otherwise, so CI logs stay readable. Only rank 0 creates a MetricsLog.
"""

from __future__ import annotations

import json
import math
import resource
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import torch
from tqdm import tqdm

from ..errors import EncoderlabError
from ..files import atomic_write_text

LOG_FILE = "log.jsonl"


def memory_mb(device: torch.device) -> float:
    """Peak memory in MiB: allocated tensors on CUDA, the process's peak resident set on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def truncate_log(out_dir: str | Path, after_step: int) -> None:
    """Drop log lines past `after_step`: a resumed run re-logs those steps, so the log reads as one run."""
    path = Path(out_dir) / LOG_FILE
    if not path.exists():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
            if line.strip() and json.loads(line)["step"] <= after_step]
    atomic_write_text(path, "".join(kept))


def read_log(out_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(out_dir) / LOG_FILE
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _tensorboard_writer(log_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise EncoderlabError("tensorboard=true but TensorBoard is not installed; run `pip install tensorboard` "
                              "or set tensorboard=false") from exc
    return SummaryWriter(log_dir=str(log_dir))


class MetricsLog:
    """Appends records to log.jsonl (flushed per line, so a killed run keeps its log) and TensorBoard."""

    def __init__(self, out_dir: str | Path, *, tensorboard: bool = False) -> None:
        self.path = Path(out_dir) / LOG_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        self._tb = _tensorboard_writer(Path(out_dir) / "tensorboard") if tensorboard else None

    def write(self, record: dict[str, Any]) -> None:
        # JSON has no NaN/inf: a skipped (non-finite) step logs null, which every JSON reader accepts.
        record = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, int | float) and not isinstance(value, bool):
                    self._tb.add_scalar(key, value, record["step"])

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


class Progress:
    """A tqdm bar on a terminal, or a plain line per logged step; `mode` is TrainConfig.progress."""

    def __init__(self, total: int, initial: int, mode: str, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if self.stream.isatty() else "lines"
        self.mode, self.total = mode, total
        self._start_time, self._start_step = time.perf_counter(), initial
        self._bar = (tqdm(total=total, initial=initial, file=self.stream, dynamic_ncols=True, unit="step")
                     if mode == "bar" else None)

    def update(self, step: int, record: dict[str, Any]) -> None:
        """Called at every logged step with that step's log record."""
        if self._bar is not None:
            self._bar.update(step - self._bar.n)
            self._bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}",
                                  items_s=f"{record['items_per_sec']:.0f}", refresh=False)
        elif self.mode == "lines":
            elapsed = time.perf_counter() - self._start_time
            done = step - self._start_step
            eta = elapsed / done * (self.total - step) if done > 0 else float("nan")
            print(f"step {step}/{self.total} epoch {record['epoch']} loss {record['loss']:.4f} "
                  f"lr {record['lr']:.3e} {record['items_per_sec']:.0f} items/s eta {eta:.0f}s",
                  file=self.stream, flush=True)

    def message(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        elif self.mode != "off":
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
