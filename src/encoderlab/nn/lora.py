"""LoRA: low-rank adaptation of linear layers (Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large
Language Models").

A frozen weight W is adapted as W + (α/r)·B·A with A: (r, in) and B: (out, r). B starts at zero, so the
adapted model starts exactly equal to the original; only A and B (and whatever the task leaves trainable,
e.g. a classification head) are trained. `merge_lora` folds B·A into W for export: the merged model is a
plain model with no LoRA modules and the same outputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ConfigError


class LoRALinear(nn.Module):
    """Wraps a frozen `nn.Linear` and adds a trainable low-rank update."""

    def __init__(self, base: nn.Linear, rank: int = 8, alpha: float = 16.0, dropout: float = 0.0):
        super().__init__()
        if rank < 1:
            raise ConfigError(f"LoRA rank must be >= 1, got {rank}")
        self.base = base
        self.base.weight.requires_grad_(False)
        if self.base.bias is not None:
            self.base.bias.requires_grad_(False)
        self.rank = rank
        self.scaling = alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))  # as nn.Linear initialises its weight
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = self.dropout(x) @ self.lora_a.T @ self.lora_b.T  # (..., in) -> (..., r) -> (..., out)
        return self.base(x) + update * self.scaling

    def merged(self) -> nn.Linear:
        """A plain nn.Linear with W + (α/r)·B·A."""
        linear = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None,
                           device=self.base.weight.device, dtype=self.base.weight.dtype)
        with torch.no_grad():
            linear.weight.copy_(self.base.weight + (self.lora_b @ self.lora_a) * self.scaling)
            if self.base.bias is not None:
                linear.bias.copy_(self.base.bias)
        return linear


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, module)


def apply_lora(model: nn.Module, targets: Sequence[str] = ("query", "value"), rank: int = 8,
               alpha: float = 16.0, dropout: float = 0.0, freeze_others: bool = True) -> list[str]:
    """Replace every nn.Linear whose name ends with one of `targets` by a LoRALinear; return their names.

    With `freeze_others`, every other parameter of `model` is frozen (unfreeze a task head afterwards).
    """
    linears = {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    chosen = [name for name in linears if name.rsplit(".", 1)[-1] in targets]
    if not chosen:
        suffixes = sorted({name.rsplit(".", 1)[-1] for name in linears})
        raise ConfigError(f"LoRA targets {list(targets)} match no linear layer; choose from {suffixes}")
    if freeze_others:
        for param in model.parameters():
            param.requires_grad_(False)
    for name in chosen:
        _set_submodule(model, name, LoRALinear(linears[name], rank, alpha, dropout))
    return chosen


def merge_lora(model: nn.Module) -> int:
    """Fold every LoRALinear of `model` back into a plain nn.Linear, in place; return how many."""
    wrapped = [(name, m) for name, m in model.named_modules() if isinstance(m, LoRALinear)]
    for name, module in wrapped:
        _set_submodule(model, name, module.merged())
    return len(wrapped)
