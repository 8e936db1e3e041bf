"""Knowledge distillation: a shallower student cut from a teacher encoder, and the losses that train it.

The student keeps a subset of the teacher's blocks — by default every other one, ending at the last (6 -> 3
keeps blocks 1, 3, 5) — and shares its embeddings, final norm and pooler, so it starts as a close copy of
the teacher rather than from scratch (DistilBERT, Sanh et al., 2019, "DistilBERT, a distilled version of
BERT"). It then learns to reproduce the teacher's outputs:

    embeddings   MSE and/or 1 - cosine between pooled sentence embeddings (Reimers & Gurevych, 2020,
                 "Making Monolingual Sentence Embeddings Multilingual using Knowledge Distillation"),
                 optionally MSE between the hidden states of each kept block and its teacher block
    logits       KL(softmax(teacher / T) || softmax(student / T)) * T² mixed with cross-entropy on the
                 gold labels (Hinton et al., 2015, "Distilling the Knowledge in a Neural Network")

    student = make_student(teacher_bert, layers=None)           # alternate layers; layers=[0, 5] to choose
    loss = embedding_distillation_loss(s_emb, t_emb, mse_weight=1.0, cosine_weight=1.0)
    loss = logit_distillation_loss(s_logits, t_logits, labels, temperature=2.0, kd_weight=0.5)

Everything here is a pure function of tensors and modules; `encoderlab.tasks.distill` drives training.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..models.bert import BertModel


# ============================================================================ the student
def alternate_layers(n_teacher: int, n_student: int | None = None) -> list[int]:
    """Evenly spaced teacher blocks for an `n_student`-block student (default: half), always ending at the
    last block, whose output space the student must match: 6 -> 3 gives [1, 3, 5], 12 -> 4 [2, 5, 8, 11].

    >>> alternate_layers(6)
    [1, 3, 5]
    """
    n_student = max(1, n_teacher // 2) if n_student is None else n_student
    if not 1 <= n_student <= n_teacher:
        raise ConfigError(f"student_layers={n_student} must be between 1 and the teacher's {n_teacher} layers")
    step = n_teacher / n_student
    return [round(n_teacher - 1 - step * (n_student - 1 - i)) for i in range(n_student)]


def check_layers(layers: Sequence[int], n_teacher: int) -> list[int]:
    """`layers` as a sorted list of distinct teacher block indices; anything else is a clear error."""
    layers = list(layers)
    if not layers:
        raise ConfigError(f"layers=[] keeps no teacher block; name at least one of 0..{n_teacher - 1}, e.g. "
                          f"layers=[{', '.join(map(str, alternate_layers(n_teacher)))}], or leave it null for "
                          "alternate layers")
    bad = [i for i in layers if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < n_teacher]
    if bad:
        raise ConfigError(f"layers={layers}: {bad[0]!r} is not a block of the {n_teacher}-layer teacher; use "
                          f"indices 0..{n_teacher - 1}")
    if len(set(layers)) != len(layers) or layers != sorted(layers):
        raise ConfigError(f"layers={layers} must be distinct and increasing (the student runs them in order), "
                          f"e.g. layers={sorted(set(layers))}")
    return layers


def make_student(teacher: BertModel, layers: Sequence[int] | None = None,
                 n_layers: int | None = None) -> BertModel:
    """A copy of `teacher` that keeps only blocks `layers` (default: `alternate_layers`), with copies of its
    embeddings, final norm and pooler. The teacher is not modified; with every layer kept the student
    computes exactly what the teacher computes."""
    n_teacher = len(teacher.blocks)
    if layers is None:
        layers = alternate_layers(n_teacher, n_layers)
    layers = check_layers(layers, n_teacher)
    if n_layers is not None and len(layers) != n_layers:
        raise ConfigError(f"layers={layers} has {len(layers)} entries but student_layers={n_layers}; give one "
                          "of the two (or make them agree)")
    student = copy.deepcopy(teacher)
    # Whole blocks are copied, so whatever each block holds (pruned heads, other widths) comes along as is.
    student.blocks = nn.ModuleList(student.blocks[i] for i in layers)
    student.cfg = dataclasses.replace(teacher.cfg, n_layers=len(layers))
    return student


# ============================================================================ capturing block outputs
@contextmanager
def block_outputs(model: BertModel) -> Iterator[list[torch.Tensor]]:
    """Collect the output of every block of `model` while the block runs, in order.

    Padded batches run packed (cfg.unpad) and a block's output is then (N, C) over the real tokens only;
    a teacher and a student given the same mask take the same path, so their outputs line up row by row.
    """
    captured: list[torch.Tensor] = []
    handles = [block.register_forward_hook(lambda module, inputs, output: captured.append(output))
               for block in model.blocks]
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


# ============================================================================ losses
def embedding_distillation_loss(student: torch.Tensor, teacher: torch.Tensor, mse_weight: float = 1.0,
                                cosine_weight: float = 1.0) -> torch.Tensor:
    """student, teacher: (B, D) pooled sentence embeddings (not normalised) -> scalar
    mse_weight · mean((s - t)²) + cosine_weight · mean(1 - cos(s, t))."""
    if student.shape != teacher.shape:
        raise ValueError(f"student embeddings {tuple(student.shape)} and teacher embeddings "
                         f"{tuple(teacher.shape)} differ in shape")
    loss = student.new_zeros(())
    if mse_weight:
        loss = loss + mse_weight * F.mse_loss(student, teacher)
    if cosine_weight:
        loss = loss + cosine_weight * (1.0 - F.cosine_similarity(student, teacher, dim=-1)).mean()
    return loss


def hidden_state_loss(student_states: Sequence[torch.Tensor], teacher_states: Sequence[torch.Tensor],
                      layers: Sequence[int]) -> torch.Tensor:
    """Mean over student blocks j of MSE(student_states[j], teacher_states[layers[j]]): block j of the student
    imitates the teacher block it was copied from. States are (N, C) packed or (B, T, C), as `block_outputs`
    captures them."""
    if len(student_states) != len(layers):
        raise ValueError(f"{len(student_states)} student states for {len(layers)} mapped layers")
    losses = [F.mse_loss(s.float(), teacher_states[i].float()) for s, i in zip(student_states, layers, strict=True)]
    return torch.stack(losses).mean()


def kl_distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                         temperature: float = 2.0) -> torch.Tensor:
    """KL(softmax(teacher / T) || softmax(student / T)) · T², averaged over the batch. (B, K) -> scalar.

    The T² keeps the gradient's size independent of T (Hinton et al., 2015, section 2)."""
    if temperature <= 0:
        raise ConfigError(f"temperature={temperature} must be positive (1-4 is typical; higher is softer)")
    log_student = F.log_softmax(student_logits.float() / temperature, dim=-1)  # (B, K)
    log_teacher = F.log_softmax(teacher_logits.float() / temperature, dim=-1)  # (B, K)
    return F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True) * temperature**2


def logit_distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                            labels: torch.Tensor | None, temperature: float = 2.0,
                            kd_weight: float = 0.5) -> torch.Tensor:
    """kd_weight · KL-distillation at `temperature` + (1 - kd_weight) · cross-entropy on gold `labels` (B,).

    kd_weight=1 (or labels=None) learns from the teacher alone; kd_weight=0 is plain fine-tuning."""
    if not 0.0 <= kd_weight <= 1.0:
        raise ConfigError(f"kd_weight={kd_weight} must be in [0, 1] (the share of the teacher term)")
    loss = kl_distillation_loss(student_logits, teacher_logits, temperature)
    if labels is None or kd_weight == 1.0:
        return loss
    return kd_weight * loss + (1.0 - kd_weight) * F.cross_entropy(student_logits.float(), labels)
