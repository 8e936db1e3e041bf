"""The directory of an encoder with a task head: what `encoderlab finetune` (task=classify|tag), `prune` and
`distill` (mode=logits) leave in OUT_DIR/final/.

    final/
      config.json, model.safetensors, tokenizer.json ...   the encoder in Hugging Face layout (LoRA merged)
      head.safetensors                                     the head's weights
      head.json                                            `HeadInfo`: task, labels, pooling, how it was trained

`head.json` marks the kind: `task` says whether it is a classifier (artifacts/classifier.py) or a tagger
(artifacts/tagger.py). It is written from and read into the `HeadInfo` dataclass; files written by earlier
versions (the same keys, some missing) read the same way.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from torch import nn

from ..errors import CheckpointError
from ..files import atomic_write_json
from ..interop.hf_bert import load_hf_bert, save_hf_bert
from ..models.bert import BertModel
from ..models.heads import EncoderWithHead, SequenceClassificationHead, TokenClassificationHead
from ..nn.lora import merge_lora
from ..tokenization import TextTokenizer
from ..weights import load_module, save_weights
from .runs import FINAL_DIR, model_dir

HEAD_CONFIG = "head.json"
HEAD_WEIGHTS = "head.safetensors"
HeadTask = Literal["sequence-classification", "token-classification"]
HEAD_TASKS: tuple[str, ...] = ("sequence-classification", "token-classification")


@dataclass
class HeadInfo:
    """head.json: what the head predicts and how the model was made (so `evaluate` finds the held-out rows)."""

    task: HeadTask
    """sequence-classification (one label per text) or token-classification (one tag per word)."""
    label_names: list[str]
    """The labels (tags), in the order of the head's outputs."""
    max_length: int
    """Inputs are truncated to this many word pieces."""
    pooling: str = "cls"
    """Classifiers: how token states are pooled (cls or mean)."""
    head_dropout: float = 0.1
    init: str = ""
    """Where the encoder's weights came from (a checkpoint, `random ...`, `distilled from ...`)."""
    mode: str = "full"
    """full, frozen or lora (LoRA is merged into the saved weights)."""
    lora: dict[str, Any] | None = None
    data: str = ""
    """The training data: a catalog name or an absolute file path."""
    split: str = "0.8,0.1,0.1"
    """train,validation,test fractions of `data` (with `seed`, this recreates the held-out split)."""
    seed: int = 0
    validation_data: str = ""
    test_data: str = ""
    text_column: str = "text"
    label_column: str = "label"
    bad_rows: str = "error"
    """How training read `data`'s bad rows (finetune's bad_rows=): evaluating on `data` again skips the same rows,
    so that its held-out split is the one training held out."""
    data_config: dict[str, Any] | None = None
    """prune: the data settings of the recovery fine-tune."""
    pruning: dict[str, Any] | None = None
    """prune: method, sparsity, scope, recovery steps, teacher."""
    distilled: dict[str, Any] | None = None
    """distill mode=logits: teacher, layers, temperature, kd_weight."""
    long_text: dict[str, Any] | None = None
    """Classifiers trained with long_text=chunk: window, stride and window pooling (`LongText.to_dict()`, read
    by artifacts/classifier.py); None reads texts truncated to max_length."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys of a head.json this version does not know (kept, and written back)."""

    def __post_init__(self) -> None:
        if self.task not in HEAD_TASKS:
            raise CheckpointError(f"{HEAD_CONFIG}: task={self.task!r} is unknown; expected {' or '.join(HEAD_TASKS)}")
        if len(self.label_names) < 2:
            raise CheckpointError(f"{HEAD_CONFIG}: label_names={self.label_names!r}; a head needs at least 2 labels")
        self.label_names = [str(name) for name in self.label_names]
        self.max_length = int(self.max_length)
        self.seed = int(self.seed)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = HEAD_CONFIG) -> HeadInfo:
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        missing = [k for k in ("task", "label_names", "max_length") if k not in raw]
        if missing:
            raise CheckpointError(f"{where} has no {', '.join(missing)}; re-run the fine-tune or restore the file")
        known = {k: v for k, v in raw.items() if k in names}
        for key in ("data", "validation_data", "test_data"):  # older files wrote null for "not given"
            known[key] = known.get(key) or ""
        return cls(**known, extra={k: v for k, v in raw.items() if k not in names})

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**self.extra, **{k: v for k, v in out.items() if v is not None}}


def head_task(directory: Path) -> str | None:
    """The `task` of directory/head.json without loading anything; None when there is no readable head.json
    (a damaged one is reported when the model is loaded)."""
    try:
        raw = json.loads((directory / HEAD_CONFIG).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return raw.get("task") if isinstance(raw, dict) else None


# ============================================================================ saving
def export_encoder(model: EncoderWithHead) -> BertModel:
    """A plain copy of the encoder with any LoRA adapters folded into its weights."""
    encoder = copy.deepcopy(model.bert).cpu()
    merge_lora(encoder)
    return encoder.eval()


def save_finetuned(model: EncoderWithHead, tokenizer: TextTokenizer, directory: str | Path, info: HeadInfo) -> Path:
    """The encoder (HF layout, LoRA merged), its tokenizer, head.safetensors and head.json."""
    directory = Path(directory)
    save_hf_bert(export_encoder(model), directory)
    tokenizer.save(directory)
    save_weights(directory / HEAD_WEIGHTS, {k: v.detach().cpu().contiguous()
                                            for k, v in model.head.state_dict().items()})
    atomic_write_json(directory / HEAD_CONFIG, info.to_dict())
    return directory


# ============================================================================ loading
def finetuned_dir(path: str | Path) -> Path:
    """A fine-tuned model directory, given it or the run directory that holds it in final/."""
    path = Path(path).expanduser()
    found = model_dir(path, HEAD_CONFIG)
    if found is not None:
        return found
    if not path.exists():
        raise CheckpointError(f"model {str(path)!r} does not exist; pass the OUT_DIR of `encoderlab finetune` "
                              "or its final/ directory")
    for candidate in (path, path / FINAL_DIR):
        if (candidate / "config.json").is_file():  # an encoder without a head: say what it is and what takes it
            kind = ("a sentence-embedding model (finetune task=embed)" if (candidate / "modules.json").is_file()
                    else "an encoder without a classification or tagging head (e.g. from `encoderlab pretrain`)")
            raise CheckpointError(f"{str(path)!r} holds no {HEAD_CONFIG}; it is not a fine-tuned model with a head "
                                  f"(classifier or tagger) but {kind}. Embed with `encoderlab encode --model "
                                  f"{path}`, or fine-tune it with `encoderlab finetune init={path} ...`")
    raise CheckpointError(f"{str(path)!r} holds no {HEAD_CONFIG}; it is not a fine-tuned model. Pass the OUT_DIR "
                          "of `encoderlab finetune` (or its final/), or finish that run first")


def read_head_info(path: str | Path) -> HeadInfo:
    """head.json of a fine-tuned model directory (or of the run directory holding it)."""
    where = finetuned_dir(path) / HEAD_CONFIG
    try:
        raw = json.loads(where.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{str(where)!r} is not valid JSON ({exc}); re-run the fine-tune or restore the "
                              "file") from exc
    if not isinstance(raw, dict):
        raise CheckpointError(f"{str(where)!r} holds {type(raw).__name__}, not an object; re-run the fine-tune")
    return HeadInfo.from_dict(raw, str(where))


def build_head(info: HeadInfo, d_model: int) -> nn.Module:
    if info.task == "sequence-classification":
        return SequenceClassificationHead(d_model, len(info.label_names), info.pooling, info.head_dropout)
    return TokenClassificationHead(d_model, len(info.label_names), info.head_dropout)


def load_finetuned(path: str | Path) -> tuple[EncoderWithHead, TextTokenizer, HeadInfo]:
    """(model in eval mode, tokenizer, head.json) of a fine-tuned model directory or its run."""
    directory = finetuned_dir(path)
    info = read_head_info(directory)
    encoder = load_hf_bert(directory)
    tokenizer = TextTokenizer.from_dir(directory)
    head = build_head(info, encoder.cfg.d_model)
    load_module(head, directory / HEAD_WEIGHTS, fits=HEAD_CONFIG,
                missing=f"{str(directory)!r} has {HEAD_CONFIG} but no {HEAD_WEIGHTS}; the save was interrupted, "
                        "re-run the fine-tune")
    return EncoderWithHead(encoder, head).eval(), tokenizer, info
