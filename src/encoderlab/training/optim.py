"""Optimizers with decay / no-decay parameter groups, and global-norm gradient clipping.

Weight decay pulls weights towards zero; on a bias, a norm's gain or an embedding's LayerNorm that is a
regulariser nobody wants (it fights the normalisation). We decide structurally, not by parameter names:
a parameter is *not* decayed if it belongs to a normalisation module (LayerNorm, RMSNorm, BatchNorm,
GroupNorm, ...) or has fewer than 2 dimensions (biases, gains, scalars). Embedding tables are matrices and
are decayed, as in BERT and GPT-2.

A task can pass its own groups (e.g. layer-wise lr decay); a group's `lr_scale` multiplies the scheduled lr
at every step, so the schedule's shape holds for every group and an exact resume restores the scales with
the optimizer state.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .config import TrainConfig

_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm, nn.RMSNorm,
    nn.modules.batchnorm._NormBase,  # BatchNorm1d/2d/3d, SyncBatchNorm, InstanceNorm*
)


def is_norm_module(module: nn.Module) -> bool:
    """A normalisation layer: a torch norm type, or any module whose class name ends in 'Norm'."""
    return isinstance(module, _NORM_TYPES) or type(module).__name__.endswith("Norm")


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Split trainable parameters into a decayed group (matrices) and a non-decayed one (the rest)."""
    no_decay_ids = set()
    for module in model.modules():
        if is_norm_module(module):
            no_decay_ids.update(id(p) for p in module.parameters(recurse=False))
    decay, no_decay = [], []
    for param in model.parameters():  # each shared parameter appears once
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or id(param) in no_decay_ids else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def check_groups(model: nn.Module, groups: list[dict]) -> None:
    """Every trainable parameter in exactly one group, and every `lr_scale` a positive number."""
    trainable = {id(p): name for name, p in model.named_parameters() if p.requires_grad}
    seen: set[int] = set()
    for i, group in enumerate(groups):
        scale = group.get("lr_scale", 1.0)
        if not isinstance(scale, int | float) or not scale > 0:
            raise ConfigError(f"parameter group {i}: lr_scale={scale!r} must be a positive number (the group "
                              "trains at the scheduled lr times lr_scale)")
        for param in group["params"]:
            if id(param) in seen:
                raise ConfigError(f"parameter group {i}: {trainable.get(id(param), 'a parameter')} is in two "
                                  "groups; put each parameter in one group")
            seen.add(id(param))
    missing = [name for pid, name in trainable.items() if pid not in seen]
    if missing:
        raise ConfigError(f"{len(missing)} trainable parameter(s) are in no optimizer group, e.g. {missing[0]!r}; "
                          "they would never be updated. Add them to a group or set requires_grad=False")


def build_optimizer(model: nn.Module, cfg: TrainConfig, groups: list[dict] | None = None) -> torch.optim.Optimizer:
    """AdamW or SGD+momentum at the peak lr (the Trainer sets each group's lr per step: scheduled lr x the
    group's `lr_scale`, default 1). `groups` defaults to `param_groups(model, cfg.weight_decay)`."""
    if groups is None:
        groups = param_groups(model, cfg.weight_decay)
    else:
        check_groups(model, groups)
    groups = [g for g in groups if g["params"]]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)


def clip_grad_norm(params: list[nn.Parameter], max_norm: float | None) -> torch.Tensor:
    """Global L2 norm of all gradients (a 0-d tensor), clipping them to `max_norm` if given.

    Under FSDP the gradients are sharded DTensors; torch's clip_grad_norm_ reduces across shards itself.
    """
    with_grad = [p for p in params if p.grad is not None]
    if max_norm is None:
        return nn.utils.get_total_norm([p.grad for p in with_grad])
    return nn.utils.clip_grad_norm_(with_grad, max_norm)
