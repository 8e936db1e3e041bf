"""A small, model-agnostic Trainer: a plain loop, no callbacks. Tasks pass functions, not subclasses.

    trainer = Trainer(
        cfg,                       # a TrainConfig (or a task's subclass of it)
        model,                     # any nn.Module, on the CPU; the Trainer moves and wraps it
        train_data,                # a map-style dataset: len() and [i]
        loss_fn=lambda model, batch: (loss, n_items),   # loss = mean over n_items (samples or tokens)
        collate_fn=collate,        # list of dataset items -> batch (tensors are moved to the device)
        eval_data=val_data,        # optional; evaluated every `eval_every` steps and at the end
        eval_fn=lambda model, batch: {"loss": (loss, n), "accuracy": (acc, n)},  # default: {"loss": loss_fn}
        save_final=lambda model, directory: ...,        # default: model.safetensors + config.yaml
        lengths=None,              # optional per-sample lengths: length-bucketed training batches
        param_groups=None,         # optional model -> optimizer groups; a group's `lr_scale` scales its lr
    )
    result = trainer.fit()         # -> TrainResult(step, metrics, best_step, ...)

One optimizer step: for each of `grad_accum` micro-batches, forward under autocast and backward of
`loss * n_items`; then the gradients are divided by the global item count (all-reduced across ranks), so
the update is the mean over every item of the global batch however it is split across processes and
micro-batches. Then: unscale (fp16), global-norm clipping, a finiteness check (a non-finite loss or
gradient skips the step; `max_bad_steps` in a row stop the run), and the optimizer step at the lr of the
schedule (times each parameter group's `lr_scale`, e.g. for layer-wise lr decay). Every `log_every` steps
a line goes to log.jsonl; every `eval_every` steps the model is evaluated (best checkpoint, early
stopping); every `save_every` steps a checkpoint is written.

Exact resume: the data position (epoch, batch in epoch), the RNG states of every rank, optimizer, scaler
and counters are in each checkpoint, and the per-epoch order depends on (seed, epoch) only; on CPU a
killed-and-resumed run ends bitwise identical to an uninterrupted one (with num_workers=0, or with
datasets whose items do not draw random numbers in worker processes). Ctrl-C (SIGINT) or SIGTERM in a
single-process run stops it after the current step with a checkpoint of that step (even with save_every=0)
and a `TrainingInterrupted` error that names the --resume command; a second signal stops it at once.
"""

from __future__ import annotations

import copy
import math
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..config import save_config, to_dict
from ..errors import CheckpointError, ConfigError, EncoderlabError
from ..files import atomic_write_json
from ..weights import save_weights
from . import checkpoint as ckpt
from .config import TrainConfig
from .distributed import (
    all_reduce_sum,
    broadcast_object,
    dist_info,
    full_model_state,
    full_optimizer_state,
    load_full_state,
    no_grad_sync,
    unwrap,
    wrap_model,
)
from .metrics_log import MetricsLog, Progress, memory_mb, truncate_log
from .optim import build_optimizer, clip_grad_norm
from .precision import autocast, check_precision, grad_scaler, resolve_device
from .sampler import EpochBatchSampler, eval_batches
from .schedules import make_schedule
from .seeding import rng_state, seed_everything, set_rng_state
from .stop_signals import StopSignals

Batch = Any
FEW_STEPS = 10
"""Fewer optimizer steps than this, from epochs= (not an explicit max_steps=), get a note: a small data set at
the default epochs and batch size trains a model for one or two updates and reports its scores as if trained."""
LossFn = Callable[[nn.Module, Batch], tuple[torch.Tensor, int | torch.Tensor]]
EvalFn = Callable[[nn.Module, Batch], Mapping[str, tuple[torch.Tensor | float, int | torch.Tensor]]]
SaveFn = Callable[[nn.Module, Path], None]


class TrainingDivergedError(EncoderlabError):
    """Too many consecutive steps with a non-finite loss or gradient."""


class TrainingInterrupted(EncoderlabError):
    """Ctrl-C (SIGINT) or SIGTERM stopped a run between two steps; a checkpoint of that step was written."""


@dataclass
class TrainResult:
    step: int
    """Optimizer steps taken (skipped non-finite steps included: they consumed their data)."""
    metrics: dict[str, float]
    """Final train loss, eval metrics, best metric and counters; what metrics.json holds."""
    best_step: int | None = None
    stopped_early: bool = False
    final_dir: Path | None = None
    checkpoints: list[Path] = field(default_factory=list)


def move_to_device(batch: Batch, device: torch.device) -> Batch:
    """Tensors anywhere in nested dicts/lists/tuples go to `device`; everything else is left alone."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=device.type == "cuda")
    if isinstance(batch, Mapping):
        return {k: move_to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(move_to_device(v, device) for v in batch)
    return batch


class Trainer:
    """One training engine for every task: it takes the model, the data and functions, never a task.

        trainer = Trainer(cfg, model, train_data, loss_fn=loss_fn, eval_data=val, eval_fn=eval_fn,
                          save_final=save_final)
        result = trainer.fit()          # TrainResult: metrics, best step, final_dir

    `loss_fn(model, batch) -> (mean loss, n)` and `eval_fn(model, batch) -> {name: (value, n)}` say what is
    optimised and measured; `save_final(model, directory)` writes the task's saved-model kind to OUT_DIR/final/.
    The Trainer owns the loop: devices and precision (bf16 autocast, fp16 + GradScaler on CUDA), AdamW/SGD with
    schedules and per-group lr scales, clipping and accumulation, non-finite steps skipped and counted,
    evaluation and early stopping, atomic checksummed checkpoints with exact resume (model, optimizer, RNG and
    data position), DDP/FSDP under torchrun, and log.jsonl / metrics.json.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        model: nn.Module,
        train_data: Dataset,
        *,
        loss_fn: LossFn,
        collate_fn: Callable[[list[Any]], Batch] | None = None,
        eval_data: Dataset | None = None,
        eval_fn: EvalFn | None = None,
        save_final: SaveFn | None = None,
        lengths: Sequence[int] | None = None,
        param_groups: Callable[[nn.Module], list[dict[str, Any]]] | None = None,
    ) -> None:
        self.cfg, self.loss_fn, self.collate_fn = cfg, loss_fn, collate_fn
        self.train_data, self.eval_data = train_data, eval_data
        self.eval_fn = eval_fn or (lambda m, batch: {"loss": loss_fn(m, batch)})
        self.save_final = save_final or self._default_save_final
        self.lengths = lengths
        self.out_dir = Path(cfg.out_dir)
        self.dist = dist_info()
        self.device = resolve_device(cfg.device, self.dist.local_rank)
        check_precision(cfg.precision, self.device)

        global_batch = cfg.batch_size * self.dist.world_size
        self.steps_per_epoch = len(train_data) // global_batch // cfg.grad_accum
        if self.steps_per_epoch == 0:
            raise ConfigError(f"{len(train_data)} training samples do not fill one optimizer step of "
                              f"batch_size={cfg.batch_size} x {self.dist.world_size} processes x "
                              f"grad_accum={cfg.grad_accum}; lower batch_size or grad_accum")
        if eval_data is not None and len(eval_data) < self.dist.world_size:
            raise ConfigError(f"the eval set has {len(eval_data)} samples, fewer than {self.dist.world_size} "
                              "processes; use a larger eval set")
        if (cfg.eval_every or cfg.patience) and eval_data is None:
            raise ConfigError("eval_every/patience are set but the task gave no eval data; set eval_every=0 "
                              "patience=0 or provide validation data")
        self.total_steps = cfg.max_steps or cfg.epochs * self.steps_per_epoch
        self.schedule = make_schedule(cfg, self.total_steps)

        # FSDP shards in place; keep a weightless skeleton to rebuild a plain module for the final export.
        self._skeleton = copy.deepcopy(model).to("meta") if self._fsdp else None
        self.model = wrap_model(model.to(self.device), cfg.distributed, self.device)
        # Groups are built from the plain module (parameter names without DDP's "module." prefix).
        groups = param_groups(unwrap(self.model)) if param_groups is not None else None
        self.optimizer = build_optimizer(unwrap(self.model), cfg, groups)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.scaler = grad_scaler(cfg.precision, self.device)

        # Counters: everything below is saved in checkpoints.
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0  # optimizer steps already taken in `epoch`
        self.skipped_steps = 0
        self.bad_in_a_row = 0
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.evals_since_best = 0
        self.last_eval: dict[str, float] = {}

    @property
    def _fsdp(self) -> bool:
        return self.cfg.distributed == "fsdp" and self.dist.enabled

    # ------------------------------------------------------------------ the loop
    def fit(self) -> TrainResult:
        cfg, main = self.cfg, self.dist.is_main
        self._start_or_resume()
        if not cfg.max_steps and self.step == 0 and self.total_steps < FEW_STEPS:  # e.g. epochs=1 on 50 rows
            self._warn(f"note: this run takes {self.total_steps} optimizer step(s) in all ({cfg.epochs} epoch(s) of "
                       f"{len(self.train_data)} training samples at batch_size={cfg.batch_size}"
                       f"{f' x grad_accum={cfg.grad_accum}' if cfg.grad_accum > 1 else ''}); a model learns little "
                       "from so few updates: raise epochs= (or set max_steps=), or lower batch_size=")
        log = MetricsLog(self.out_dir, tensorboard=cfg.tensorboard) if main else None
        progress = Progress(self.total_steps, self.step, cfg.progress if main else "off")
        window = {"loss": 0.0, "items": 0.0, "time": time.perf_counter()}
        last_saved = self.step if self.step else None
        last_evaluated = None
        stopped_early = False
        stop = StopSignals(active=self.dist.world_size == 1).install()
        try:
            while self.step < self.total_steps and not stopped_early:
                batches = iter(self._train_loader())
                while self.batch_in_epoch < self.steps_per_epoch and self.step < self.total_steps:
                    micro_batches = [next(batches) for _ in range(cfg.grad_accum)]
                    lr = cfg.lr * self.schedule(self.step)
                    loss, items, grad_norm = self._train_step(micro_batches, lr)
                    self.step += 1
                    self.batch_in_epoch += 1
                    if math.isfinite(loss):
                        window["loss"] += loss * items
                        window["items"] += items

                    if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                        record = self._log_record(window, lr, grad_norm)
                        if log is not None:
                            log.write(record)
                        progress.update(self.step, record)
                        window = {"loss": 0.0, "items": 0.0, "time": time.perf_counter(), "last": record}

                    improved = False
                    if cfg.eval_every and self.step % cfg.eval_every == 0:
                        improved = self._evaluate_and_track(log)
                        last_evaluated = self.step
                        stopped_early = bool(cfg.patience) and self.evals_since_best >= cfg.patience
                    if (cfg.save_every and self.step % cfg.save_every == 0) or improved:
                        self._save_checkpoint()
                        last_saved = self.step
                    if stop.received:
                        if last_saved != self.step:
                            self._save_checkpoint()
                        raise TrainingInterrupted(
                            f"{stop.received} at step {self.step} of {self.total_steps}: stopped after that step "
                            f"and saved a checkpoint of it in {ckpt.checkpoint_root(self.out_dir)}; continue "
                            f"with --resume {shlex.quote(str(self.out_dir))}")
                    if stopped_early:
                        progress.message(f"early stop at step {self.step}: {cfg.best_metric} has not improved "
                                         f"for {cfg.patience} evaluations (best {self.best_value:.6g} at step "
                                         f"{self.best_step})")
                        break
                if self.batch_in_epoch >= self.steps_per_epoch:
                    self.epoch += 1
                    self.batch_in_epoch = 0

            if self.eval_data is not None and last_evaluated != self.step:
                if self._evaluate_and_track(log):
                    last_saved = None  # the final model is the new best: checkpoint it
            if last_saved != self.step:
                self._save_checkpoint()
            final_dir = self._export_final()
        finally:
            stop.restore()
            progress.close()
            if log is not None:
                log.close()

        metrics = {"step": self.step, "epoch": self.step / self.steps_per_epoch,
                   "skipped_steps": self.skipped_steps, **self.last_eval}
        if "last" in window:
            metrics["train_loss"] = window["last"]["loss"]
        if self.best_value is not None:
            metrics[f"best_{cfg.best_metric}"] = self.best_value
            metrics["best_step"] = self.best_step
        metrics["stopped_early"] = stopped_early
        return TrainResult(self.step, metrics, self.best_step, stopped_early, final_dir,
                           ckpt.list_checkpoints(self.out_dir))

    def _train_loader(self) -> DataLoader:
        sampler = EpochBatchSampler(len(self.train_data), self.cfg.batch_size, self.cfg.seed, self.epoch,
                                    start=self.batch_in_epoch * self.cfg.grad_accum, rank=self.dist.rank,
                                    world_size=self.dist.world_size, lengths=self.lengths)
        # A private generator: DataLoader would otherwise draw its worker base seed from the global torch
        # RNG each time an iterator is created, and a resumed run creates one more than an uninterrupted run.
        generator = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + self.epoch)
        return DataLoader(self.train_data, batch_sampler=sampler, collate_fn=self.collate_fn,
                          num_workers=self.cfg.num_workers, generator=generator,
                          pin_memory=self.device.type == "cuda")

    def _train_step(self, micro_batches: list[Batch], lr: float) -> tuple[float, float, float]:
        """One optimizer step; returns (global mean loss, global items, grad norm), skipping if non-finite."""
        cfg = self.cfg
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        items = torch.zeros((), device=self.device)
        for i, batch in enumerate(micro_batches):
            batch = move_to_device(batch, self.device)
            with no_grad_sync(self.model, active=i < len(micro_batches) - 1):
                with autocast(cfg.precision, self.device):
                    loss, n = self.loss_fn(self.model, batch)
                # Weight by item count; divided by the global count below (after the all-reduce).
                weighted = loss.float() * n
                self.scaler.scale(weighted).backward()
            loss_sum += weighted.detach()
            items += n
        totals = all_reduce_sum(torch.stack([loss_sum, items]))  # (2,) global sums
        global_items = float(totals[1])
        global_loss = float(totals[0]) / global_items if global_items > 0 else float("nan")

        self.scaler.unscale_(self.optimizer)
        if global_items > 0:
            # DDP/FSDP averaged the gradients over ranks: x world_size / items = sum over items / items.
            grads = [p.grad for p in self.params if p.grad is not None]
            torch._foreach_mul_(grads, self.dist.world_size / global_items)
        grad_norm = float(clip_grad_norm(self.params, cfg.clip_grad_norm))

        loss_ok = math.isfinite(global_loss)
        if self.scaler.is_enabled():
            # fp16: inf gradients from a too-large loss scale are routine; the scaler skips those steps and
            # lowers its scale. Only a non-finite loss counts as a bad step.
            self.scaler.step(self.optimizer)
            self.scaler.update()
            bad = not loss_ok
        else:
            bad = not (loss_ok and math.isfinite(grad_norm))
            if not bad:
                self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if bad:
            self._count_bad_step(global_loss, grad_norm)
        else:
            self.bad_in_a_row = 0
        return global_loss, global_items, grad_norm

    def _count_bad_step(self, loss: float, grad_norm: float) -> None:
        self.skipped_steps += 1
        self.bad_in_a_row += 1
        if self.dist.is_main:
            print(f"step {self.step}: non-finite loss ({loss}) or gradient norm ({grad_norm}); step skipped "
                  f"({self.bad_in_a_row} in a row, {self.skipped_steps} in total)", file=sys.stderr)
        if self.bad_in_a_row >= self.cfg.max_bad_steps:
            last = ckpt.latest_valid_checkpoint(self.out_dir, warn=lambda _: None)
            raise TrainingDivergedError(
                f"stopped at step {self.step}: {self.bad_in_a_row} consecutive steps had a non-finite loss or "
                f"gradient (max_bad_steps={self.cfg.max_bad_steps}). The last good checkpoint is "
                f"{last or 'none (no checkpoint was saved yet)'}. Check the data for NaN/inf values, lower "
                "lr=, set clip_grad_norm=1.0, or use precision=fp32; resume with --resume once fixed.")

    def _log_record(self, window: dict[str, Any], lr: float, grad_norm: float) -> dict[str, Any]:
        elapsed = time.perf_counter() - window["time"]
        return {
            "step": self.step,
            "epoch": round(self.step / self.steps_per_epoch, 4),
            "loss": window["loss"] / window["items"] if window["items"] else float("nan"),
            "lr": lr,
            "grad_norm": grad_norm,
            "items_per_sec": window["items"] / elapsed if elapsed > 0 else 0.0,
            "memory_mb": round(memory_mb(self.device), 1),
            "skipped_steps": self.skipped_steps,
        }

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[str, float]:
        """Item-weighted means of `eval_fn`'s metrics over the whole eval set (all ranks), as `eval_<name>`.

        The RNG states are restored afterwards: how often a run evaluates never changes how it trains.
        """
        if self.eval_data is None:
            raise ConfigError("evaluate() needs eval_data; pass eval_data= to the Trainer")
        saved = rng_state()
        try:
            return self._evaluate()
        finally:
            set_rng_state(saved)

    @torch.no_grad()
    def _evaluate(self) -> dict[str, float]:
        # DDP's forward may broadcast buffers (a collective), and ranks can hold one batch more or less: use
        # the plain module. FSDP needs its (collective) forward, so uneven ranks repeat a batch, uncounted.
        model = self.model if self._fsdp else unwrap(self.model)
        batches = eval_batches(len(self.eval_data), self.cfg.batch_size, self.dist.rank, self.dist.world_size,
                               equal_counts=self._fsdp)
        model.eval()
        sums: dict[str, torch.Tensor] = {}
        for indices, counted in batches:
            batch = move_to_device(self.collate([self.eval_data[i] for i in indices]), self.device)
            with autocast(self.cfg.precision, self.device):
                values = self.eval_fn(model, batch)
            for name, (value, n) in values.items():
                pair = torch.stack([torch.as_tensor(value, dtype=torch.float64) * n,
                                    torch.as_tensor(n, dtype=torch.float64)]).cpu()
                sums[name] = sums.get(name, torch.zeros(2, dtype=torch.float64)) + pair * counted
        model.train()
        names = sorted(sums)
        totals = all_reduce_sum(torch.stack([sums[k] for k in names]).to(self.device))  # (metrics, 2)
        return {f"eval_{k}": float(totals[i, 0] / totals[i, 1]) for i, k in enumerate(names)}

    def collate(self, items: list[Any]) -> Batch:
        if self.collate_fn is not None:
            return self.collate_fn(items)
        return torch.utils.data.default_collate(items)

    def _evaluate_and_track(self, log: MetricsLog | None) -> bool:
        """Evaluate, log, update best/patience; True if this is a new best."""
        cfg = self.cfg
        self.last_eval = self.evaluate()
        if cfg.best_metric not in self.last_eval:
            raise ConfigError(f"best_metric={cfg.best_metric!r} is not among the eval metrics "
                              f"{sorted(self.last_eval)}; set best_metric= to one of them")
        value = self.last_eval[cfg.best_metric]
        better = self.best_value is None or (value < self.best_value if cfg.best_mode == "min"
                                             else value > self.best_value)
        if better:
            self.best_value, self.best_step, self.evals_since_best = value, self.step, 0
        else:
            self.evals_since_best += 1
        if log is not None:
            log.write({"step": self.step, "epoch": round(self.step / self.steps_per_epoch, 4), **self.last_eval})
        return better

    # ------------------------------------------------------------------ checkpoints
    def _start_or_resume(self) -> None:
        existing = ckpt.list_checkpoints(self.out_dir)
        if not self.cfg.resume:
            if existing:
                raise ConfigError(f"{self.out_dir} already holds checkpoints ({existing[-1].name}); resume it "
                                  f"with --resume {shlex.quote(str(self.out_dir))}, or choose a new out_dir=")
            # The training stream (dropout, augmentation) starts from the seed whatever the task drew while
            # building the model, and differs per rank so data-parallel replicas drop different units.
            seed_everything(self.cfg.seed + self.dist.rank)
            return
        found = ckpt.latest_valid_checkpoint(self.out_dir, warn=self._warn) if self.dist.is_main else None
        found = broadcast_object(found)
        if found is None:
            if existing:
                raise CheckpointError(f"no valid checkpoint in {ckpt.checkpoint_root(self.out_dir)} (all "
                                      f"{len(existing)} are incomplete or corrupt); start a new run")
            self._warn(f"--resume: {self.out_dir} has no checkpoint yet; starting from step 0")
            seed_everything(self.cfg.seed + self.dist.rank)
            return
        self.load_checkpoint(found)
        if self.dist.is_main:
            truncate_log(self.out_dir, self.step)
            self._warn(f"resumed from {found} (step {self.step}, epoch {self.epoch})")

    def _warn(self, message: str) -> None:
        if self.dist.is_main:
            print(message, file=sys.stderr, flush=True)

    def _model_state(self) -> dict[str, torch.Tensor]:
        return full_model_state(self.model, self._fsdp)

    def _save_checkpoint(self) -> None:
        model_state = self._model_state()  # collective under FSDP
        optimizer_state = full_optimizer_state(self.model, self.optimizer, self._fsdp)
        rngs = [rng_state()]
        if self.dist.enabled:
            rngs = [None] * self.dist.world_size
            dist.all_gather_object(rngs, rng_state())
        if not self.dist.is_main:
            return
        state = {
            "step": self.step,
            "data_position": {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch},
            "optimizer": optimizer_state,
            "scaler": self.scaler.state_dict(),
            "schedule": {"name": self.cfg.schedule, "step": self.step, "total_steps": self.total_steps},
            "rng_per_rank": rngs,
            "counters": {"skipped_steps": self.skipped_steps, "bad_in_a_row": self.bad_in_a_row,
                         "best_value": self.best_value, "best_step": self.best_step,
                         "evals_since_best": self.evals_since_best},
        }
        meta = {"step": self.step, "epoch": self.epoch, "metrics": self.last_eval, "config": to_dict(self.cfg)}
        ckpt.save_checkpoint(ckpt.step_dir(self.out_dir, self.step), model_state, state, meta)
        best = ckpt.step_dir(self.out_dir, self.best_step) if self.best_step is not None else None
        if best is not None and best.exists():
            atomic_write_json(ckpt.checkpoint_root(self.out_dir) / "best.json",
                              {"step": self.best_step, "path": best.name, "metric": self.cfg.best_metric,
                               "value": self.best_value})
        ckpt.prune_checkpoints(self.out_dir, self.cfg.keep_last, protect=best)

    def load_checkpoint(self, path: Path) -> None:
        """Restore model, optimizer, scaler, counters, data position and RNG states from `path`."""
        model_state, state, _ = ckpt.load_checkpoint(path)
        load_full_state(self.model, self.optimizer, model_state, state["optimizer"], self._fsdp)
        self.scaler.load_state_dict(state["scaler"])
        self.step = state["step"]
        self.epoch = state["data_position"]["epoch"]
        self.batch_in_epoch = state["data_position"]["batch_in_epoch"]
        counters = state["counters"]
        self.skipped_steps, self.bad_in_a_row = counters["skipped_steps"], counters["bad_in_a_row"]
        self.best_value, self.best_step = counters["best_value"], counters["best_step"]
        self.evals_since_best = counters["evals_since_best"]
        rngs = state["rng_per_rank"]
        if len(rngs) == self.dist.world_size:
            set_rng_state(rngs[self.dist.rank])
        else:
            self._warn(f"checkpoint was written by {len(rngs)} processes, now {self.dist.world_size}: RNG streams "
                       "are re-seeded, so dropout/augmentation will differ from an uninterrupted run")
            seed_everything(self.cfg.seed + self.dist.rank + self.step)

    # ------------------------------------------------------------------ final export
    def _export_final(self) -> Path:
        """Write OUT_DIR/final/ via `save_final` (rank 0, with a plain unsharded module)."""
        final_dir = self.out_dir / "final"
        if self._fsdp:
            full_state = self._model_state()  # collective: every rank takes part
            if self.dist.is_main:
                plain = self._skeleton.to_empty(device="cpu")
                plain.load_state_dict(full_state)
                for name, buffer in self.model.named_buffers():  # FSDP does not shard buffers
                    plain.get_buffer(name).copy_(buffer)
                self.save_final(plain, final_dir)
        elif self.dist.is_main:
            self.save_final(unwrap(self.model), final_dir)
        if self.dist.enabled:
            dist.barrier()
        return final_dir

    def _default_save_final(self, model: nn.Module, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        save_weights(directory / "model.safetensors", model.state_dict())
        save_config(self.cfg, directory / "config.yaml")
