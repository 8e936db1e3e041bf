"""Hugging Face BERT-family checkpoints <-> `encoderlab.models.bert.BertModel`.

A checkpoint directory holds `config.json`, weights (`model.safetensors`, or `pytorch_model.bin` loaded
with `weights_only=True`) and a tokenizer (`tokenizer.json` or `vocab.txt`). Weights are renamed through
an explicit template table per family (`LAYOUTS`) and every shape is checked; nothing is matched by
guessing. `save_hf_bert` writes the checkpoint's own layout back (`BertConfig.hf_model_type`), so
`transformers.AutoModel.from_pretrained` loads our model as the class it came from.
`save_hf_bert_mlm` / `load_hf_bert_mlm` do the same for `BertForMaskedLM` (encoder under `bert.`, the MLM
head under `cls.predictions.`), the layout `transformers.BertForMaskedLM.from_pretrained` reads, and for
`RoFormerForMaskedLM` (encoder under `roformer.`, the same head).

The families, all one post-LN encoder with learned absolute positions (but RoFormer, below):
- `bert`: the reference layout (`HF_TO_OURS`, config names in `HF_CONFIG_FIELDS`).
- `roberta` and `xlm-roberta` (Liu et al., 2019; Conneau et al., 2020; the same network): BERT's tensor and
  config names, `type_vocab_size` 1, and positions numbered over the non-padding tokens from
  pad_token_id + 1 (`BertConfig.position_numbering` and `position_offset`). config.json's
  `max_position_embeddings` counts the table's rows, `BertConfig.max_positions` the longest sequence:
  514 = 512 + (pad_token_id + 1) for roberta-base.
- `distilbert` (Sanh et al., 2019): its own names (`DISTILBERT_TO_OURS`, `DISTILBERT_CONFIG_FIELDS`), no
  token-type embeddings, no pooler, LayerNorm epsilon fixed at 1e-12. A checkpoint with
  `sinusoidal_pos_embds` stores its sinusoid table in the weights, so it loads as a learned table holding
  those values (same outputs) and saves back with `sinusoidal_pos_embds: false`.
Task-model checkpoints (`…ForMaskedLM`, `…ForSequenceClassification`) load too: the encoder's prefix
(`bert.`, `roberta.`, `distilbert.`, `roformer.`) is removed and the task head skipped.

Structurally pruned models (`encoderlab.compression.pruning`) keep this layout with smaller tensors:
- fewer heads in a block: config.json keeps `num_attention_heads` and lists the removed heads in
  `pruned_heads` ({"layer": [head, ...]}), the field `transformers` 4.x reads to prune on load. Saved
  weights hold the kept heads first, so we write the removed ones as the last indices of each layer.
  `transformers` 5 dropped head pruning and cannot load such a checkpoint (it reports a size mismatch).
- narrower feed-forward blocks: BERT has one `intermediate_size`; we keep it and add the per-layer widths
  as `encoderlab_intermediate_sizes`. No `transformers` version loads these weights; encoderlab does.

Rotary post-LN MLP encoders (what `encoderlab pretrain` trains by default) are saved as `roformer` (Su et
al., 2021, "RoFormer: Enhanced Transformer with Rotary Position Embedding"), which `transformers.RoFormerModel`
computes: BERT's tensor names under `roformer.` in task models, no position table but the sinusoid table
`encoder.embed_positions.weight` transformers keeps, and no pooler. RoFormer rotates interleaved pairs of
dimensions (2i, 2i+1) where `nn.rotary` rotates the halves (i, i + d_head/2), so the query and key rows of
each head are permuted on save and back on load (`interleave_rotary_rows`); scores and outputs are unchanged.
A pooler, which RoFormerModel lacks, is kept under BERT's names (transformers ignores it); an encoder without
token types gets a one-row table of zeros (RoFormer always adds one, and adding zeros changes nothing).

Encoders no Hugging Face family can express (sinusoidal positions, pre-LN, a GLU feed-forward, no token
types or RoBERTa's position numbering with learned positions under hf_model_type 'bert') are saved in BERT's
layout with `model_type: "encoderlab-bert"`, so `transformers` refuses them instead of silently computing
something else, and saving one says so (`EncoderlabOnlyWarning`). config.json adds `encoderlab_positions`,
`encoderlab_norm_position` and `encoderlab_ffn_kind` (and `encoderlab_position_numbering` /
`encoderlab_position_offset` when not BERT's); the weights add the tensors of `EXTENSION_TO_OURS` and, without
learned positions, have no position table. Rotary encoderlab-bert checkpoints written before the RoFormer
layout (half-split rows, no sinusoid table) still load, and save back as roformer.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from ..errors import CheckpointError, ConfigError
from ..files import atomic_write_bytes, atomic_write_json
from ..models.bert import ARCHITECTURE_FIELDS, BertConfig, BertForMaskedLM, BertModel

# Hugging Face name -> our name; "{}" is the layer index.
HF_TO_OURS: dict[str, str] = {
    "embeddings.word_embeddings.weight": "embeddings.tokens.weight",
    "embeddings.position_embeddings.weight": "embeddings.positions.weight",
    "embeddings.token_type_embeddings.weight": "embeddings.segments.weight",
    "embeddings.LayerNorm.weight": "embeddings.norm.weight",
    "embeddings.LayerNorm.bias": "embeddings.norm.bias",
    "encoder.layer.{}.attention.self.query.weight": "blocks.{}.attn.query.weight",
    "encoder.layer.{}.attention.self.query.bias": "blocks.{}.attn.query.bias",
    "encoder.layer.{}.attention.self.key.weight": "blocks.{}.attn.key.weight",
    "encoder.layer.{}.attention.self.key.bias": "blocks.{}.attn.key.bias",
    "encoder.layer.{}.attention.self.value.weight": "blocks.{}.attn.value.weight",
    "encoder.layer.{}.attention.self.value.bias": "blocks.{}.attn.value.bias",
    "encoder.layer.{}.attention.output.dense.weight": "blocks.{}.attn.out.weight",
    "encoder.layer.{}.attention.output.dense.bias": "blocks.{}.attn.out.bias",
    "encoder.layer.{}.attention.output.LayerNorm.weight": "blocks.{}.attn_norm.weight",
    "encoder.layer.{}.attention.output.LayerNorm.bias": "blocks.{}.attn_norm.bias",
    "encoder.layer.{}.intermediate.dense.weight": "blocks.{}.ffn.up.weight",
    "encoder.layer.{}.intermediate.dense.bias": "blocks.{}.ffn.up.bias",
    "encoder.layer.{}.output.dense.weight": "blocks.{}.ffn.down.weight",
    "encoder.layer.{}.output.dense.bias": "blocks.{}.ffn.down.bias",
    "encoder.layer.{}.output.LayerNorm.weight": "blocks.{}.ffn_norm.weight",
    "encoder.layer.{}.output.LayerNorm.bias": "blocks.{}.ffn_norm.bias",
    "pooler.dense.weight": "pooler.weight",
    "pooler.dense.bias": "pooler.bias",
}

# Tensors only encoderlab's variants have (model_type "encoderlab-bert"), named in the same style.
EXTENSION_TO_OURS: dict[str, str] = {
    "encoder.layer.{}.intermediate.gate.weight": "blocks.{}.ffn.gate.weight",  # GLU feed-forward
    "encoder.layer.{}.intermediate.gate.bias": "blocks.{}.ffn.gate.bias",
    "encoder.final_layer_norm.weight": "final_norm.weight",  # pre-LN
    "encoder.final_layer_norm.bias": "final_norm.bias",
}
# Like models.bert.ARCHITECTURE_FIELDS, for position numbering; written to an encoderlab-bert config.json only
# when they differ (RoBERTa's).
POSITION_FIELDS = {"position_numbering": "column", "position_offset": 0}
ENCODERLAB_MODEL_TYPE = "encoderlab-bert"

# Present in real checkpoints but not part of the encoder: buffers and task heads of other architectures.
IGNORED_HF_KEYS = re.compile(r"^(embeddings\.position_ids|cls\..*|qa_outputs\..*|classifier\..*)$")

# config.json name -> BertConfig name
HF_CONFIG_FIELDS = {
    "vocab_size": "vocab_size",
    "hidden_size": "d_model",
    "num_hidden_layers": "n_layers",
    "num_attention_heads": "n_heads",
    "intermediate_size": "d_ff",
    "max_position_embeddings": "max_positions",
    "type_vocab_size": "n_segments",
    "hidden_dropout_prob": "dropout",
    "attention_probs_dropout_prob": "attention_dropout",
    "layer_norm_eps": "norm_eps",
    "pad_token_id": "pad_token_id",
    "initializer_range": "init_std",
}
PER_LAYER_D_FF = "encoderlab_intermediate_sizes"  # our extension of config.json: per-block d_ff after pruning
HF_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh",
                  "relu": "relu", "silu": "silu", "swish": "silu"}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

# ---------------------------------------------------------------------------- DistilBERT
# Hugging Face name -> our name. No token types and no pooler; otherwise one-to-one with BERT's blocks.
DISTILBERT_TO_OURS: dict[str, str] = {
    "embeddings.word_embeddings.weight": "embeddings.tokens.weight",
    "embeddings.position_embeddings.weight": "embeddings.positions.weight",
    "embeddings.LayerNorm.weight": "embeddings.norm.weight",
    "embeddings.LayerNorm.bias": "embeddings.norm.bias",
    "transformer.layer.{}.attention.q_lin.weight": "blocks.{}.attn.query.weight",
    "transformer.layer.{}.attention.q_lin.bias": "blocks.{}.attn.query.bias",
    "transformer.layer.{}.attention.k_lin.weight": "blocks.{}.attn.key.weight",
    "transformer.layer.{}.attention.k_lin.bias": "blocks.{}.attn.key.bias",
    "transformer.layer.{}.attention.v_lin.weight": "blocks.{}.attn.value.weight",
    "transformer.layer.{}.attention.v_lin.bias": "blocks.{}.attn.value.bias",
    "transformer.layer.{}.attention.out_lin.weight": "blocks.{}.attn.out.weight",
    "transformer.layer.{}.attention.out_lin.bias": "blocks.{}.attn.out.bias",
    "transformer.layer.{}.sa_layer_norm.weight": "blocks.{}.attn_norm.weight",
    "transformer.layer.{}.sa_layer_norm.bias": "blocks.{}.attn_norm.bias",
    "transformer.layer.{}.ffn.lin1.weight": "blocks.{}.ffn.up.weight",
    "transformer.layer.{}.ffn.lin1.bias": "blocks.{}.ffn.up.bias",
    "transformer.layer.{}.ffn.lin2.weight": "blocks.{}.ffn.down.weight",
    "transformer.layer.{}.ffn.lin2.bias": "blocks.{}.ffn.down.bias",
    "transformer.layer.{}.output_layer_norm.weight": "blocks.{}.ffn_norm.weight",
    "transformer.layer.{}.output_layer_norm.bias": "blocks.{}.ffn_norm.bias",
}
# DistilBERT config.json name -> BertConfig name
DISTILBERT_CONFIG_FIELDS = {
    "vocab_size": "vocab_size",
    "dim": "d_model",
    "n_layers": "n_layers",
    "n_heads": "n_heads",
    "hidden_dim": "d_ff",
    "max_position_embeddings": "max_positions",
    "dropout": "dropout",
    "attention_dropout": "attention_dropout",
    "pad_token_id": "pad_token_id",
    "initializer_range": "init_std",
}
DISTILBERT_NORM_EPS = 1e-12  # transformers hard-codes it; config.json has no field for it


# ---------------------------------------------------------------------------- the families
@dataclass(frozen=True)
class HFLayout:
    """How one Hugging Face family names an encoder's tensors, and what else its checkpoints hold."""

    name: str
    """Display name in messages."""
    architecture: str
    """config.json `architectures` entry we write (the encoder class, e.g. BertModel)."""
    prefix: str
    """What task-model checkpoints (…ForMaskedLM, …ForSequenceClassification) put before the encoder's names."""
    templates: dict[str, str]
    """Hugging Face name -> our name; "{}" is the layer index."""
    ignored: re.Pattern
    """Buffers and task heads that real checkpoints hold besides the encoder."""


ROBERTA_IGNORED = re.compile(r"^(embeddings\.(position_ids|token_type_ids)|lm_head\..*|qa_outputs\..*|classifier\..*)$")
LAYOUTS: dict[str, HFLayout] = {
    "bert": HFLayout("BERT", "BertModel", "bert.", HF_TO_OURS, IGNORED_HF_KEYS),
    "distilbert": HFLayout("DistilBERT", "DistilBertModel", "distilbert.", DISTILBERT_TO_OURS, re.compile(
        r"^(embeddings\.position_ids|vocab_(transform|layer_norm|projector)\..*|pre_classifier\..*|qa_outputs\..*"
        r"|classifier\..*)$")),
    "roberta": HFLayout("RoBERTa", "RobertaModel", "roberta.", HF_TO_OURS, ROBERTA_IGNORED),
    "xlm-roberta": HFLayout("XLM-RoBERTa", "XLMRobertaModel", "roberta.", HF_TO_OURS, ROBERTA_IGNORED),
}
# ---------------------------------------------------------------------------- RoFormer
# BERT's names without the position table; the pooler stays in the map as our extension (RoFormerModel has none).
ROFORMER = "roformer"
ROFORMER_TO_OURS = {hf: ours for hf, ours in HF_TO_OURS.items() if hf != "embeddings.position_embeddings.weight"}
ROFORMER_SINUSOIDS = "encoder.embed_positions.weight"  # transformers' fixed table of rotary angles, not learned
LAYOUTS[ROFORMER] = HFLayout("RoFormer", "RoFormerModel", "roformer.", ROFORMER_TO_OURS, re.compile(
    r"^(encoder\.embed_positions\.weight|cls\..*|classifier\..*|qa_outputs\..*|sequence_summary\..*)$"))

ROBERTA_FAMILY = {"roberta", "xlm-roberta"}
BERT_FAMILY = set(LAYOUTS)
EXAMPLES = ("bert-base-uncased, all-MiniLM-L6-v2, distilbert-base-uncased, all-distilroberta-v1, "
            "xlm-roberta-base, roformer_chinese_base")


class EncoderlabOnlyWarning(UserWarning):
    """A model was saved in a form that encoderlab loads but `transformers` / sentence-transformers do not (all
    of it, or a part such as a pooler), because no Hugging Face family computes it."""


def _expand(hf: str, ours: str, n_layers: int) -> list[tuple[str, str]]:
    if "{}" not in hf:
        return [(hf, ours)]
    return [(hf.format(i), ours.format(i)) for i in range(n_layers)]


def key_map(cfg: BertConfig, pooler: bool = True, layout: str | None = None) -> dict[str, str]:
    """The full HF-name -> our-name map for a model of config `cfg` (with or without a pooler), in `layout`
    (a key of LAYOUTS; default: the one `saved_layout(cfg)` writes)."""
    templates = dict(LAYOUTS[layout or saved_layout(cfg)].templates)
    if cfg.positions != "learned":
        templates.pop("embeddings.position_embeddings.weight", None)
    if cfg.n_segments == 0:
        templates.pop("embeddings.token_type_embeddings.weight", None)
    if cfg.norm_position == "pre":
        templates.update({k: v for k, v in EXTENSION_TO_OURS.items() if v.startswith("final_norm.")})
    if cfg.ffn_kind == "glu":
        templates.update({k: v for k, v in EXTENSION_TO_OURS.items() if ".ffn.gate." in v})
    pairs = [pair for hf, ours in templates.items() for pair in _expand(hf, ours, cfg.n_layers)]
    return {hf: ours for hf, ours in pairs if pooler or not hf.startswith("pooler.")}


def read_hf_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    if not path.is_file():
        raise CheckpointError(
            f"{str(directory)!r} has no config.json; point to a Hugging Face BERT-family checkpoint directory "
            "(config.json + model.safetensors + tokenizer.json), an encoderlab run's OUT_DIR, or the alias "
            "'minilm'"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{str(path)!r} is not valid JSON ({exc}); re-export or re-download it") from exc


def config_from_hf(hf: dict[str, Any], source: str = "config.json") -> BertConfig:
    """Translate a Hugging Face BERT-family config.json into a BertConfig, rejecting what we cannot represent."""
    model_type = hf.get("model_type")
    if model_type not in BERT_FAMILY | {ENCODERLAB_MODEL_TYPE}:
        raise CheckpointError(
            f"{source}: model_type={model_type!r} is not a BERT checkpoint; encoderlab imports the BERT family, "
            f"model_type in {sorted(BERT_FAMILY)} (e.g. {EXAMPLES}), and its own {ENCODERLAB_MODEL_TYPE!r}"
        )
    if hf.get("is_decoder") or hf.get("add_cross_attention"):
        raise CheckpointError(f"{source}: is_decoder / add_cross_attention is set, so this checkpoint attends "
                              "causally or to another sequence; encoderlab imports bidirectional encoders only")
    if model_type == "distilbert":
        kwargs = _distilbert_config_from_hf(hf, source)
    else:
        kwargs = _bert_config_from_hf(hf, source, model_type)
    try:
        return BertConfig(**kwargs)
    except ConfigError as exc:
        raise CheckpointError(f"{source}: {exc}") from exc


def _activation_from_hf(act: Any, field: str, source: str) -> str:
    if act not in HF_ACTIVATIONS:
        raise CheckpointError(f"{source}: {field}={act!r} is not supported; use one of {sorted(HF_ACTIVATIONS)}")
    return HF_ACTIVATIONS[act]


def _bert_config_from_hf(hf: dict[str, Any], source: str, model_type: str) -> dict[str, Any]:
    """BertConfig arguments from a bert, roberta, xlm-roberta or encoderlab-bert config.json."""
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise CheckpointError(
            f"{source}: position_embedding_type={hf['position_embedding_type']!r} is not supported; "
            "only 'absolute' (learned) positions can be imported"
        )
    kwargs = {ours: hf[name] for name, ours in HF_CONFIG_FIELDS.items() if hf.get(name) is not None}
    kwargs["activation"] = _activation_from_hf(hf.get("hidden_act", "gelu"), "hidden_act", source)
    kwargs["layer_heads"] = _layer_heads_from_hf(hf, source, hf.get("num_hidden_layers", 12),
                                                 hf.get("num_attention_heads", 12))
    if hf.get(PER_LAYER_D_FF) is not None:
        kwargs["layer_d_ff"] = hf[PER_LAYER_D_FF]
    if model_type == ENCODERLAB_MODEL_TYPE:
        kwargs.update({name: hf[f"encoderlab_{name}"] for name in (*ARCHITECTURE_FIELDS, *POSITION_FIELDS)
                       if f"encoderlab_{name}" in hf})
    elif model_type == ROFORMER:
        _check_roformer_config(hf, source)
        kwargs["positions"] = "rotary"  # hf_model_type stays 'bert': saved_layout writes it back as roformer
    else:
        kwargs["hf_model_type"] = model_type
    if model_type in ROBERTA_FAMILY:  # fairseq's numbering: real tokens from pad_token_id + 1
        kwargs.setdefault("pad_token_id", 1)  # RobertaConfig's default
        kwargs.update(position_numbering="non_padding", position_offset=kwargs["pad_token_id"] + 1)
    # config.json counts the table's rows; BertConfig.max_positions the longest sequence
    offset = kwargs.get("position_offset", 0)
    if "max_positions" in kwargs:
        if kwargs["max_positions"] <= offset:
            raise CheckpointError(f"{source}: max_position_embeddings={kwargs['max_positions']} leaves no position "
                                  f"for a token after the first {offset} rows (pad_token_id + 1)")
        kwargs["max_positions"] -= offset
    return kwargs


def _check_roformer_config(hf: dict[str, Any], source: str) -> None:
    """Refuse the RoFormer options our encoder does not compute."""
    if hf.get("rotary_value"):
        raise CheckpointError(f"{source}: rotary_value=true rotates the values too; encoderlab's rotary attention "
                              "rotates queries and keys only, so this RoFormer cannot be imported")
    embedding_size = hf.get("embedding_size")
    if embedding_size is not None and embedding_size != hf.get("hidden_size", 768):
        raise CheckpointError(f"{source}: embedding_size={embedding_size} differs from hidden_size="
                              f"{hf.get('hidden_size')}, so RoFormer projects its embeddings (embeddings_project); "
                              "encoderlab imports RoFormers whose embeddings are as wide as the encoder")


def _distilbert_config_from_hf(hf: dict[str, Any], source: str) -> dict[str, Any]:
    """BertConfig arguments from a DistilBERT config.json: no token types, no pooler, LayerNorm eps 1e-12."""
    kwargs = {ours: hf[name] for name, ours in DISTILBERT_CONFIG_FIELDS.items() if hf.get(name) is not None}
    kwargs["layer_heads"] = _layer_heads_from_hf(hf, source, hf.get("n_layers", 6), hf.get("n_heads", 12))
    if hf.get(PER_LAYER_D_FF) is not None:
        kwargs["layer_d_ff"] = hf[PER_LAYER_D_FF]
    return dict(kwargs, activation=_activation_from_hf(hf.get("activation", "gelu"), "activation", source),
                n_segments=0, pooler=False, norm_eps=DISTILBERT_NORM_EPS, hf_model_type="distilbert")


def _layer_heads_from_hf(hf: dict[str, Any], source: str, n_layers: int, n_heads: int) -> list[int] | None:
    """Heads per block from `pruned_heads` ({"layer": [removed head, ...]}), or None when nothing was pruned."""
    pruned = hf.get("pruned_heads") or {}
    if not pruned:
        return None
    n_layers, n_heads = int(n_layers), int(n_heads)
    if not isinstance(pruned, dict):
        raise CheckpointError(f"{source}: pruned_heads must map a layer index to a list of head indices, "
                              f"got {pruned!r}")
    kept = [n_heads] * n_layers
    for layer, heads in pruned.items():
        try:
            i, removed = int(layer), {int(h) for h in heads}
        except (TypeError, ValueError):
            raise CheckpointError(f"{source}: pruned_heads[{layer!r}]={heads!r} is not a list of head indices "
                                  "under a layer index") from None
        if not 0 <= i < n_layers or not all(0 <= h < n_heads for h in removed):
            raise CheckpointError(f"{source}: pruned_heads[{layer!r}]={sorted(removed)} is outside "
                                  f"{n_layers} layers x {n_heads} heads; config.json is inconsistent")
        kept[i] = n_heads - len(removed)
    return kept


def config_to_hf(cfg: BertConfig) -> dict[str, Any]:
    """A config.json that `transformers` reads as the same model, in the family of cfg.hf_model_type. A model
    BERT cannot express (see is_plain_bert) gets model_type "encoderlab-bert" and its architecture fields."""
    hf_act = {"gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu", "silu": "silu"}[cfg.activation]
    if cfg.hf_model_type == "distilbert":
        if cfg.norm_eps != DISTILBERT_NORM_EPS:
            raise ConfigError(f"BertConfig.norm_eps={cfg.norm_eps}: DistilBERT's LayerNorm epsilon is fixed at "
                              f"{DISTILBERT_NORM_EPS}; set hf_model_type='bert' to save this encoder as BERT")
        hf = {name: getattr(cfg, ours) for name, ours in DISTILBERT_CONFIG_FIELDS.items()}
        hf.update(model_type="distilbert", architectures=[LAYOUTS["distilbert"].architecture], activation=hf_act,
                  sinusoidal_pos_embds=False)
    elif saved_layout(cfg) == ROFORMER:
        hf = {name: getattr(cfg, ours) for name, ours in HF_CONFIG_FIELDS.items()}
        hf.update(model_type=ROFORMER, architectures=[LAYOUTS[ROFORMER].architecture], hidden_act=hf_act,
                  embedding_size=cfg.d_model, rotary_value=False, type_vocab_size=max(cfg.n_segments, 1))
    else:
        hf = {name: getattr(cfg, ours) for name, ours in HF_CONFIG_FIELDS.items()}
        hf["max_position_embeddings"] = cfg.max_positions + cfg.position_offset  # rows of the table
        hf.update(model_type=cfg.hf_model_type, architectures=[LAYOUTS[cfg.hf_model_type].architecture],
                  hidden_act=hf_act, position_embedding_type="absolute")
        if not is_plain_bert(cfg):
            del hf["position_embedding_type"]
            hf.update(model_type=ENCODERLAB_MODEL_TYPE, architectures=["EncoderlabBertModel"],
                      **{f"encoderlab_{name}": getattr(cfg, name) for name in ARCHITECTURE_FIELDS})
            hf.update({f"encoderlab_{name}": getattr(cfg, name) for name, value in POSITION_FIELDS.items()
                       if getattr(cfg, name) != value})
    if cfg.layer_heads is not None and any(k < cfg.n_heads for k in cfg.layer_heads):
        # the kept heads sit first in the saved weights, so the removed ones are the last indices
        hf["pruned_heads"] = {str(i): list(range(k, cfg.n_heads))
                              for i, k in enumerate(cfg.layer_heads) if k < cfg.n_heads}
    if cfg.layer_d_ff is not None and any(f != cfg.d_ff for f in cfg.layer_d_ff):
        hf[PER_LAYER_D_FF] = list(cfg.layer_d_ff)
    return hf


def is_roformer(cfg: BertConfig) -> bool:
    """Whether `transformers.RoFormerModel` computes this config: rotary positions, post-LN, an MLP feed-forward
    (BertConfig already ties rotary positions to column numbering)."""
    return (cfg.hf_model_type == "bert" and cfg.positions == "rotary" and cfg.norm_position == "post"
            and cfg.ffn_kind == "mlp")


def saved_layout(cfg: BertConfig) -> str:
    """The LAYOUTS entry `save_hf_bert` writes for `cfg`: its own family, roformer, or (for encoderlab-bert)
    BERT's names."""
    return ROFORMER if is_roformer(cfg) else cfg.hf_model_type


def encoderlab_only_variants(cfg: BertConfig) -> list[str]:
    """The architecture choices of `cfg` that no Hugging Face family computes, in words (empty: it saves as
    bert, distilbert, roberta, xlm-roberta or roformer)."""
    if is_plain_bert(cfg) or is_roformer(cfg):
        return []
    words = {("positions", "sinusoidal"): "sinusoidal positions (positions='sinusoidal')",
             ("norm_position", "pre"): "pre-LN (norm_position='pre')",
             ("ffn_kind", "glu"): "a GLU feed-forward (ffn_kind='glu')"}
    variants = [text for (field, value), text in words.items() if getattr(cfg, field) == value]
    if cfg.n_segments == 0:
        variants.append("no token-type embeddings (n_segments=0)")
    if cfg.position_numbering != "column":
        variants.append("RoBERTa's position numbering under hf_model_type='bert'")
    return variants


def warn_if_encoderlab_only(cfg: BertConfig, pooler: bool, directory: Path) -> None:
    """Say at save time (EncoderlabOnlyWarning) what of the model only encoderlab will load, and why."""
    variants = encoderlab_only_variants(cfg)
    if variants:
        warnings.warn(f"{str(directory)!r}: this encoder has {', '.join(variants)}, which no Hugging Face family "
                      f"computes; it is saved as model_type {ENCODERLAB_MODEL_TYPE!r}, which encoderlab loads and "
                      "transformers / sentence-transformers refuse. Post-LN encoders with an MLP feed-forward and "
                      "learned or rotary positions are saved as bert / roformer, which they load",
                      EncoderlabOnlyWarning, stacklevel=3)
    pruned = []
    if cfg.layer_heads is not None and any(k < cfg.n_heads for k in cfg.layer_heads):
        pruned.append("fewer heads in some blocks (pruned_heads; transformers 5 dropped head pruning)")
    if cfg.layer_d_ff is not None and any(f != cfg.d_ff for f in cfg.layer_d_ff):
        pruned.append(f"per-block feed-forward widths ({PER_LAYER_D_FF})")
    if pruned:
        warnings.warn(f"{str(directory)!r}: this pruned encoder has {' and '.join(pruned)}, which transformers 5 "
                      "refuses with a size mismatch; encoderlab loads it", EncoderlabOnlyWarning, stacklevel=3)
    if pooler and is_roformer(cfg):
        warnings.warn(f"{str(directory)!r}: RoFormerModel has no pooler, so transformers ignores this encoder's "
                      "pooler.dense.* tensors (encoderlab loads them; the last hidden states are the same)",
                      EncoderlabOnlyWarning, stacklevel=3)


def is_plain_bert(cfg: BertConfig) -> bool:
    """Whether `transformers`' class for cfg.hf_model_type computes what this config describes (positions and
    their numbering, norms, feed-forward, token types). BertConfig only lets the 'bert' layout differ."""
    if cfg.hf_model_type != "bert":
        return True
    return (all(getattr(cfg, name) == value for name, value in {**ARCHITECTURE_FIELDS, **POSITION_FIELDS}.items())
            and cfg.n_segments > 0)  # transformers' BERT always adds a token-type embedding


def _find_weights(directory: Path) -> Path:
    for name in WEIGHT_FILES:
        if (directory / name).is_file():
            return directory / name
    raise CheckpointError(
        f"{str(directory)!r} has config.json but no weights; expected one of {', '.join(WEIGHT_FILES)}"
    )


def read_hf_state_dict(directory: Path, prefix: str = "bert.") -> dict[str, torch.Tensor]:
    """The checkpoint's tensors, named as the encoder class names them: task models' `prefix` (BertFor*:
    "bert.", RobertaFor*: "roberta.", DistilBertFor*: "distilbert.") removed, TF-era gamma/beta renamed."""
    path = _find_weights(directory)
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, OSError, RuntimeError, EOFError, ValueError) as exc:
        raise CheckpointError(f"cannot read weights {str(path)!r}: {exc}. The file may be truncated; "
                              "re-export or re-download it") from exc
    renamed = {}
    for key, tensor in state.items():
        key = key.removeprefix(prefix)
        key = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", key)
        key = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", key)
        renamed[key] = tensor
    return renamed


# ---------------------------------------------------------------------------- RoFormer's rotary layout
def interleave_rotary_rows(n_rows: int, d_head: int) -> torch.Tensor:
    """Row order (n_rows,) taking a query/key projection from our half-split rotary layout to RoFormer's
    interleaved one: within each head, RoFormer row 2i is our row i and row 2i+1 our row i + d_head/2 (the
    pair that nn.rotary rotates together). `weight[order]` saves; `weight[order.argsort()]` loads."""
    half = d_head // 2
    within = torch.arange(d_head).view(2, half).t().reshape(-1)  # (d_head,): 0, h, 1, h+1, ...
    heads = torch.arange(n_rows // d_head)[:, None] * d_head  # (n_heads, 1)
    return (heads + within).reshape(-1)


def roformer_sinusoids(n_positions: int, d_head: int) -> torch.Tensor:
    """(n_positions, d_head) float32: sin of every rotary angle, then cos, computed in float64 as
    `transformers.RoFormerSinusoidalPositionalEmbedding.create_weight` does."""
    angles = np.arange(n_positions)[:, None] / np.power(10000, 2 * np.arange(d_head // 2)[None] / d_head)
    return torch.from_numpy(np.concatenate([np.sin(angles), np.cos(angles)], axis=1)).float()


def _rotary_rows(hf_name: str) -> bool:
    """Whether a tensor holds query or key rows, which RoFormer orders by its interleaved rotary pairs."""
    return re.fullmatch(r"encoder\.layer\.\d+\.attention\.self\.(query|key)\.(weight|bias)", hf_name) is not None


# ---------------------------------------------------------------------------- load and save
def load_hf_bert(directory: str | Path) -> BertModel:
    """Build our BertModel from a Hugging Face BERT-family checkpoint directory (bert, distilbert, roberta,
    xlm-roberta, roformer or encoderlab-bert), with strict key and shape checks."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"model directory {str(directory)!r} does not exist; check the path "
                              "or use the alias 'minilm' for the bundled all-MiniLM-L6-v2")
    hf_config = read_hf_config(directory)
    cfg = config_from_hf(hf_config, source=str(directory / "config.json"))
    layout_name = ROFORMER if hf_config.get("model_type") == ROFORMER else cfg.hf_model_type
    layout = LAYOUTS[layout_name]
    hf_state = read_hf_state_dict(directory, layout.prefix)
    has_pooler = "pooler.dense.weight" in hf_state
    cfg.pooler = has_pooler
    model = BertModel(cfg)
    ours = model.state_dict()
    mapping = key_map(cfg, pooler=has_pooler, layout=layout_name)

    missing = [hf for hf in mapping if hf not in hf_state]
    if missing:
        raise CheckpointError(f"{str(directory)!r}: weights are missing {len(missing)} {layout.name} tensors, "
                              f"e.g. {missing[:3]}; is this a complete {layout.name} checkpoint?")
    unexpected = [k for k in hf_state if k not in mapping and not layout.ignored.match(k)]
    if unexpected:
        raise CheckpointError(f"{str(directory)!r}: weights hold {len(unexpected)} tensors that a {layout.name} "
                              f"encoder with {cfg.n_layers} layers does not have, e.g. {unexpected[:3]}")
    if layout_name == ROFORMER and ROFORMER_SINUSOIDS in hf_state:
        _check_roformer_sinusoids(hf_state[ROFORMER_SINUSOIDS], cfg, directory)
    converted = {}
    for hf_name, our_name in mapping.items():
        tensor = hf_state[hf_name]
        if tuple(tensor.shape) != tuple(ours[our_name].shape):
            raise CheckpointError(
                f"{str(directory)!r}: {hf_name} has shape {tuple(tensor.shape)} but config.json implies "
                f"{tuple(ours[our_name].shape)}; config.json and the weights do not belong together"
            )
        if layout_name == ROFORMER and _rotary_rows(hf_name):  # interleaved pairs -> our half-split
            tensor = tensor[interleave_rotary_rows(tensor.shape[0], cfg.d_head).argsort()]
        converted[our_name] = tensor.to(ours[our_name].dtype)
    model.load_state_dict(converted, strict=True)
    return model.eval()


def _check_roformer_sinusoids(table: torch.Tensor, cfg: BertConfig, directory: Path) -> None:
    """transformers rotates by the stored table: it must hold the angles nn.rotary computes (base 10000)."""
    expected = roformer_sinusoids(table.shape[0], cfg.d_head)
    if table.shape != expected.shape or not torch.allclose(table.float(), expected, atol=1e-5):
        raise CheckpointError(f"{str(directory)!r}: {ROFORMER_SINUSOIDS} ({tuple(table.shape)}) is not RoFormer's "
                              f"sinusoid table for head width {cfg.d_head} with base 10000; encoderlab's rotary "
                              "positions would rotate by other angles than transformers does")


def hf_state_dict(model: BertModel) -> dict[str, torch.Tensor]:
    """Our weights under the Hugging Face names of `saved_layout(model.cfg)` (RoFormer: query/key rows in its
    interleaved rotary order, plus its sinusoid table, and a zero token-type row if we have no token types)."""
    cfg = model.cfg
    if model.pooler is not None and cfg.hf_model_type == "distilbert":
        raise ConfigError("this encoder has a pooler, which DistilBERT does not; build it with pooler=False, "
                          "or set hf_model_type='bert' to save it as BERT")
    ours = model.state_dict()
    state = {hf: ours[name].detach().contiguous().cpu()
             for hf, name in key_map(cfg, pooler=model.pooler is not None).items()}
    if saved_layout(cfg) == ROFORMER:
        for hf_name, tensor in state.items():
            if _rotary_rows(hf_name):
                state[hf_name] = tensor[interleave_rotary_rows(tensor.shape[0], cfg.d_head)].contiguous()
        state[ROFORMER_SINUSOIDS] = roformer_sinusoids(cfg.max_positions, cfg.d_head)
        if cfg.n_segments == 0:  # RoFormer always adds a token-type row: zeros add nothing
            state["embeddings.token_type_embeddings.weight"] = torch.zeros(1, cfg.d_model)
    return state


def save_hf_bert(model: BertModel, directory: str | Path) -> Path:
    """Write config.json + model.safetensors in the Hugging Face layout of `saved_layout(model.cfg)`: the
    family the model was imported from, else BERT, RoFormer for rotary post-LN MLP encoders, or
    encoderlab-bert (with an EncoderlabOnlyWarning), atomically, file by file."""
    directory = Path(directory)
    hf_config = config_to_hf(model.cfg)
    weights = hf_state_dict(model)  # both checked before anything is written
    warn_if_encoderlab_only(model.cfg, model.pooler is not None, directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(directory / "model.safetensors", save(weights, metadata={"format": "pt"}))
    atomic_write_json(directory / "config.json", hf_config)
    return directory


# ============================================================================ BertForMaskedLM
# Hugging Face name -> our name (relative to BertForMaskedLM). The decoder weight is the token-embedding table
# (tied), so it is not stored: transformers re-ties `cls.predictions.decoder.weight` on load.
HF_MLM_HEAD: dict[str, str] = {
    "cls.predictions.transform.dense.weight": "head.dense.weight",
    "cls.predictions.transform.dense.bias": "head.dense.bias",
    "cls.predictions.transform.LayerNorm.weight": "head.norm.weight",
    "cls.predictions.transform.LayerNorm.bias": "head.norm.bias",
    "cls.predictions.bias": "head.bias",
}


MLM_ARCHITECTURES = {"bert": "BertForMaskedLM", ROFORMER: "RoFormerForMaskedLM"}


def save_hf_bert_mlm(model: BertForMaskedLM, directory: str | Path) -> Path:
    """config.json + model.safetensors in `transformers.BertForMaskedLM` layout (encoder under `bert.` and MLM
    head), or `RoFormerForMaskedLM` (under `roformer.`, the same head) for a rotary post-LN MLP encoder."""
    if model.cfg.hf_model_type != "bert":
        raise ConfigError(f"hf_model_type={model.cfg.hf_model_type!r}: the masked-LM head is saved in BERT's layout "
                          "only; save the encoder with save_hf_bert, or use hf_model_type='bert'")
    directory = Path(directory)
    hf_config = config_to_hf(model.cfg)
    layout = saved_layout(model.cfg)
    loadable = is_plain_bert(model.cfg) or is_roformer(model.cfg)
    hf_config.update(architectures=[MLM_ARCHITECTURES[layout] if loadable else "EncoderlabBertForMaskedLM"],
                     tie_word_embeddings=True)
    ours = model.state_dict()
    state = {f"{LAYOUTS[layout].prefix}{hf}": tensor for hf, tensor in hf_state_dict(model.bert).items()}
    warn_if_encoderlab_only(model.cfg, model.bert.pooler is not None, directory)
    directory.mkdir(parents=True, exist_ok=True)
    state.update({hf: ours[name].detach().contiguous().cpu() for hf, name in HF_MLM_HEAD.items()})
    atomic_write_bytes(directory / "model.safetensors", save(state, metadata={"format": "pt"}))
    atomic_write_json(directory / "config.json", hf_config)
    return directory


def load_hf_bert_mlm(directory: str | Path) -> BertForMaskedLM:
    """Our BertForMaskedLM from a Hugging Face BertForMaskedLM or RoFormerForMaskedLM checkpoint (strict keys
    and shapes)."""
    directory = Path(directory)
    encoder = load_hf_bert(directory)
    if encoder.cfg.hf_model_type != "bert":
        raise CheckpointError(f"{str(directory)!r} is a {LAYOUTS[encoder.cfg.hf_model_type].name} checkpoint; "
                              "masked-LM heads import from BERT and RoFormer checkpoints only. Load the encoder "
                              "with load_hf_bert")
    roformer = read_hf_config(directory).get("model_type") == ROFORMER
    hf_state = read_hf_state_dict(directory, LAYOUTS[ROFORMER if roformer else "bert"].prefix)
    missing = [k for k in HF_MLM_HEAD if k not in hf_state]
    if missing:
        raise CheckpointError(f"{str(directory)!r} has no MLM head (missing {missing[:2]}); it is an encoder-only "
                              "checkpoint. Load it with load_hf_bert, or pretrain a head first")
    decoder = hf_state.get("cls.predictions.decoder.weight")
    if decoder is not None and not torch.equal(decoder, hf_state["embeddings.word_embeddings.weight"]):
        raise CheckpointError(f"{str(directory)!r}: cls.predictions.decoder.weight differs from the word "
                              "embeddings; encoderlab's MLM head is always tied to them")
    model = BertForMaskedLM(encoder.cfg)
    model.bert = encoder
    ours = model.state_dict()
    head = {}
    for hf_name, our_name in HF_MLM_HEAD.items():
        tensor = hf_state[hf_name]
        if tuple(tensor.shape) != tuple(ours[our_name].shape):
            raise CheckpointError(f"{str(directory)!r}: {hf_name} has shape {tuple(tensor.shape)}, expected "
                                  f"{tuple(ours[our_name].shape)}")
        head[our_name.removeprefix("head.")] = tensor.to(ours[our_name].dtype)
    model.head.load_state_dict(head, strict=True)
    return model.eval()
