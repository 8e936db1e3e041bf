"""config.json of a Hugging Face BERT-family checkpoint <-> `BertConfig`: reading it (rejecting what we cannot
represent), writing the one `save_hf_bert` saves, and saying at save time what only encoderlab will load
(`EncoderlabOnlyWarning`). The families are described in interop/hf_bert.py.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, ConfigError
from ..models.bert import ARCHITECTURE_FIELDS, BertConfig
from .hf_layouts import (
    BERT_FAMILY,
    DISTILBERT_CONFIG_FIELDS,
    DISTILBERT_NORM_EPS,
    ENCODERLAB_MODEL_TYPE,
    EXAMPLES,
    HF_ACTIVATIONS,
    HF_CONFIG_FIELDS,
    LAYOUTS,
    PER_LAYER_D_FF,
    POSITION_FIELDS,
    ROBERTA_FAMILY,
    ROFORMER,
)


class EncoderlabOnlyWarning(UserWarning):
    """A model was saved in a form that encoderlab loads but `transformers` / sentence-transformers do not (all
    of it, or a part such as a pooler), because no Hugging Face family computes it."""


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
