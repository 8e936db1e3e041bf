"""Learning-rate schedules: pure functions `step -> multiplier of the peak lr`.

Each schedule warms up linearly from 0 to 1 over `warmup` steps, then follows its shape until `total`
steps, never going below `min_ratio` (except `constant`, which stays at 1, and `step`, which decays by
`gamma` every `step_size` steps). Being plain functions of the step, they need no state to resume.

    constant   1
    linear     1 -> min_ratio, straight line                  (BERT, Devlin et al. 2019)
    cosine     1 -> min_ratio, half cosine                    (SGDR, Loshchilov & Hutter 2017)
    triangle   0 -> 1 -> min_ratio, the one-cycle triangle    (Smith 2018); warmup is the rising edge
    step       gamma ** (steps after warmup // step_size)     (classic ResNet schedule)
    inverse_sqrt  sqrt(warmup / step), 1 at the end of warmup (Vaswani et al. 2017, "Attention Is All You
               Need", section 5.3: lr ∝ min(step / warmup, sqrt(warmup / step))); needs no total
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

from ..errors import ConfigError
from .config import TrainConfig


def _warmup(step: int, warmup: int) -> float | None:
    """The warmup multiplier, or None once warmup is over. Step 0 gets 1/warmup, not 0: no wasted step."""
    if step < warmup:
        return (step + 1) / warmup
    return None


def _progress(step: int, warmup: int, total: int) -> float:
    """Fraction of the post-warmup phase completed, in [0, 1]."""
    return min(1.0, (step - warmup) / max(1, total - warmup))


def constant(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    w = _warmup(step, warmup)
    return 1.0 if w is None else w


def linear(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    w = _warmup(step, warmup)
    if w is not None:
        return w
    return 1.0 - (1.0 - min_ratio) * _progress(step, warmup, total)


def cosine(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    w = _warmup(step, warmup)
    if w is not None:
        return w
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * _progress(step, warmup, total)))


def triangle(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    # One-cycle: the same shape as linear-with-warmup, but the peak sits at `warmup` (default: mid-run).
    warmup = warmup or total // 2
    return linear(step, warmup=warmup, total=total, min_ratio=min_ratio)


def step_decay(step: int, *, warmup: int, total: int, min_ratio: float, step_size: int, gamma: float) -> float:
    w = _warmup(step, warmup)
    if w is not None:
        return w
    return max(min_ratio, gamma ** ((step - warmup) // step_size))


def inverse_sqrt(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    # The Transformer's schedule: it decays with the step count alone, so a run stopped early (or
    # continued) has seen the same learning rates up to there, unlike cosine / linear over `total`.
    w = _warmup(step, warmup)
    if w is not None:
        return w
    return max(min_ratio, math.sqrt(max(warmup, 1) / max(step, 1)))


SCHEDULES: dict[str, Callable[..., float]] = {
    "constant": constant,
    "linear": linear,
    "cosine": cosine,
    "triangle": triangle,
    "step": step_decay,
    "inverse_sqrt": inverse_sqrt,
}


def make_schedule(cfg: TrainConfig, total_steps: int) -> Callable[[int], float]:
    """The configured schedule as a one-argument function of the step (0-based)."""
    if cfg.schedule not in SCHEDULES:
        raise ConfigError(f"schedule={cfg.schedule!r} is not one of {', '.join(SCHEDULES)}")
    kwargs = {"warmup": cfg.warmup_steps, "total": total_steps, "min_ratio": cfg.min_lr_ratio}
    if cfg.schedule == "step":
        kwargs |= {"step_size": cfg.step_size, "gamma": cfg.gamma}
    return partial(SCHEDULES[cfg.schedule], **kwargs)
