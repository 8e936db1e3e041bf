"""`TrainConfig`: the fields every training task shares, so `max_steps=`, `lr=`, ... are top-level overrides.

A task extends it with its own fields:

    @dataclass
    class PretrainConfig(TrainConfig):
        model: BertConfig = field(default_factory=BertConfig)
        mask_prob: float = 0.15

Batch sizes: `batch_size` is the number of samples per device per micro-batch. One optimizer step consumes
`batch_size * world_size * grad_accum` samples (the global batch), so a 1-process run with `batch_size=16`
and a 2-process run with `batch_size=8` see the same data and compute the same update.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import ConfigError

ScheduleName = Literal["constant", "linear", "cosine", "triangle", "step", "inverse_sqrt"]

# Keys that may change when resuming a run: they alter how long or how verbosely it runs, never what
# has already been computed. Everything else (lr, batch_size, seed, ...) would silently break exact resume.
RESUMABLE_KEYS = frozenset(
    {"max_steps", "epochs", "save_every", "eval_every", "log_every", "keep_last", "patience",
     "tensorboard", "progress", "num_workers", "max_bad_steps"}
)


@dataclass
class TrainConfig:
    # --- data and output ---
    data: str = ""
    """Path (file or directory) of the training data; its meaning is defined by the task."""
    out_dir: str = "runs/default"
    """Run directory: config.yaml, log.jsonl, checkpoints/, final/ and metrics.json go here."""
    seed: int = 0
    """The one seed: model init, data order, dropout and augmentation all derive from it."""

    # --- length ---
    epochs: int = 1
    """Passes over the training data; ignored when `max_steps` is set."""
    max_steps: int | None = None
    """Total optimizer steps; overrides `epochs` (training wraps around epochs as needed)."""

    # --- batching ---
    batch_size: int = 32
    """Samples per device per micro-batch (see the module docstring for the global batch)."""
    grad_accum: int = 1
    """Micro-batches accumulated into one optimizer step."""
    num_workers: int = 0
    """DataLoader worker processes (0 = load in the training process)."""
    threads: int | None = None
    """torch intra-op CPU threads; null keeps torch's default (all cores). 1 is faster on a busy machine.
    Part of a run's identity: CPU results can differ in the last bits with another thread count."""

    # --- optimizer ---
    optimizer: Literal["adamw", "sgd"] = "adamw"
    """AdamW (decoupled weight decay) or SGD with momentum."""
    lr: float = 1e-3
    """Peak learning rate, reached at the end of warmup."""
    weight_decay: float = 0.01
    """Applied to weight matrices only; biases, norms and other 1-d parameters are never decayed."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW moment decay rates."""
    momentum: float = 0.9
    """SGD momentum."""
    clip_grad_norm: float | None = 1.0
    """Clip gradients to this global L2 norm; null disables clipping (the norm is still logged)."""

    # --- learning-rate schedule ---
    schedule: ScheduleName = "linear"
    """constant | linear (decay to min) | cosine | triangle (one-cycle) | step (decay by gamma) |
    inverse_sqrt (sqrt(warmup / step) after warmup, the Transformer's)."""
    warmup_steps: int = 0
    """Linear warmup from 0 to `lr` over this many steps (the triangle schedule's rising edge)."""
    min_lr_ratio: float = 0.0
    """Floor of the decaying schedules, as a fraction of `lr`."""
    step_size: int = 1000
    """step schedule: multiply the lr by `gamma` every `step_size` steps after warmup."""
    gamma: float = 0.1
    """step schedule: decay factor."""

    # --- precision and device ---
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """Autocast dtype for forward/loss; bf16 works on CPU and CUDA, fp16 (with loss scaling) on CUDA only."""
    device: str = "auto"
    """auto (cuda > mps > cpu) or an explicit torch device such as cpu, cuda, cuda:1, mps."""
    distributed: Literal["ddp", "fsdp"] = "ddp"
    """Strategy when launched by torchrun with several processes: DDP replicas or FSDP sharding."""

    # --- checkpoints ---
    save_every: int = 0
    """Save a resumable checkpoint every N steps (0 = only at the end)."""
    keep_last: int = 2
    """Keep the N most recent checkpoints (the best one is always kept in addition)."""

    # --- evaluation and early stopping ---
    eval_every: int = 0
    """Evaluate every N steps (0 = only at the end); needs an eval dataset."""
    best_metric: str = "eval_loss"
    """Metric that defines the best checkpoint and drives early stopping."""
    best_mode: Literal["min", "max"] = "min"
    """Whether a lower (min) or higher (max) `best_metric` is better."""
    patience: int = 0
    """Stop after this many evaluations without improvement of `best_metric` (0 = never stop early)."""

    # --- logging ---
    log_every: int = 10
    """Write a log.jsonl line (and a progress line) every N steps."""
    tensorboard: bool = False
    """Also write TensorBoard events to out_dir/tensorboard (needs `pip install tensorboard`)."""
    progress: Literal["auto", "bar", "lines", "off"] = "auto"
    """auto: a tqdm bar on a terminal, plain lines otherwise (CI logs stay readable)."""

    # --- robustness ---
    max_bad_steps: int = 5
    """Stop after this many consecutive steps with a non-finite loss or gradient (each one is skipped)."""
    resume: bool = False
    """Continue from the latest valid checkpoint in out_dir (set by `--resume OUT_DIR`)."""

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "grad_accum": self.grad_accum,
                    "log_every": self.log_every, "max_bad_steps": self.max_bad_steps,
                    "step_size": self.step_size, "keep_last": self.keep_last}
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"{name}={value} must be at least 1")
        non_negative = {"warmup_steps": self.warmup_steps, "save_every": self.save_every,
                        "eval_every": self.eval_every, "patience": self.patience,
                        "num_workers": self.num_workers, "weight_decay": self.weight_decay}
        for name, value in non_negative.items():
            if value < 0:
                raise ConfigError(f"{name}={value} must be >= 0 (use 0 to disable)")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads={self.threads} must be >= 1, or null for torch's default")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps={self.max_steps} must be at least 1, or null to train for `epochs`")
        if self.lr <= 0:
            raise ConfigError(f"lr={self.lr} must be positive, e.g. lr=1e-3")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"min_lr_ratio={self.min_lr_ratio} must be in [0, 1] (a fraction of lr)")
        if not 0.0 < self.gamma <= 1.0:
            raise ConfigError(f"gamma={self.gamma} must be in (0, 1] (the step schedule's decay factor)")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"betas={list(self.betas)} must be two numbers in [0, 1), e.g. betas=[0.9,0.999]")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"momentum={self.momentum} must be in [0, 1)")
        if self.clip_grad_norm is not None and self.clip_grad_norm <= 0:
            raise ConfigError(f"clip_grad_norm={self.clip_grad_norm} must be positive, or null to disable")
        if self.max_steps is not None and self.warmup_steps > self.max_steps:
            raise ConfigError(f"warmup_steps={self.warmup_steps} exceeds max_steps={self.max_steps}; "
                              "lower warmup_steps")
        if not self.out_dir:
            raise ConfigError("out_dir is empty; set out_dir=runs/my-run")
        self.out_dir = str(Path(self.out_dir))
