"""Hugging Face BERT-family checkpoints <-> `encoderlab.models.bert.BertModel`.

A checkpoint directory holds `config.json`, weights (`model.safetensors`, or `pytorch_model.bin` loaded
with `weights_only=True`) and a tokenizer (`tokenizer.json` or `vocab.txt`). Weights are renamed through
the explicit template table `HF_TO_OURS` and every shape is checked; nothing is matched by guessing.
`save_hf_bert` writes the same layout back, so `transformers.AutoModel.from_pretrained` loads our model.
`save_hf_bert_mlm` / `load_hf_bert_mlm` do the same for `BertForMaskedLM` (encoder under `bert.`, the MLM
head under `cls.predictions.`), the layout `transformers.BertForMaskedLM.from_pretrained` reads.

Structurally pruned models (`encoderlab.compression.prune`) keep this layout with smaller tensors:
- fewer heads in a block: config.json keeps `num_attention_heads` and lists the removed heads in
  `pruned_heads` ({"layer": [head, ...]}), the field `transformers` 4.x reads to prune on load. Saved
  weights hold the kept heads first, so we write the removed ones as the last indices of each layer.
  `transformers` 5 dropped head pruning and cannot load such a checkpoint (it reports a size mismatch).
- narrower feed-forward blocks: BERT has one `intermediate_size`; we keep it and add the per-layer widths
  as `encoderlab_intermediate_sizes`. No `transformers` version loads these weights; encoderlab does.

Encoders BERT cannot express (rotary or sinusoidal positions, pre-LN, a GLU feed-forward) are saved in the
same layout with `model_type: "encoderlab-bert"`, so `transformers` refuses them instead of silently
computing something else. config.json adds `encoderlab_positions`, `encoderlab_norm_position` and
`encoderlab_ffn_kind`; the weights add the tensors of `EXTENSION_TO_OURS` and, without learned positions,
have no position table.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from ..errors import CheckpointError, ConfigError
from ..io import atomic_write_bytes, atomic_write_json
from ..models.bert import BertConfig, BertForMaskedLM, BertModel

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
# BertConfig fields that BERT fixes, with BERT's value; any other value needs the encoderlab-bert model type.
ARCHITECTURE_FIELDS = {"positions": "learned", "norm_position": "post", "ffn_kind": "mlp"}
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
BERT_FAMILY = {"bert"}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _expand(hf: str, ours: str, n_layers: int) -> list[tuple[str, str]]:
    if "{}" not in hf:
        return [(hf, ours)]
    return [(hf.format(i), ours.format(i)) for i in range(n_layers)]


def key_map(cfg: BertConfig, pooler: bool = True) -> dict[str, str]:
    """The full HF-name -> our-name map for a model of config `cfg` (with or without BERT's pooler)."""
    templates = dict(HF_TO_OURS)
    if cfg.positions != "learned":
        del templates["embeddings.position_embeddings.weight"]
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
            f"{str(directory)!r} has no config.json; point to a Hugging Face BERT checkpoint directory "
            "(config.json + model.safetensors + tokenizer.json) or use the alias 'minilm'"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{str(path)!r} is not valid JSON ({exc}); re-export or re-download it") from exc


def config_from_hf(hf: dict[str, Any], source: str = "config.json") -> BertConfig:
    """Translate a Hugging Face BERT config.json into a BertConfig, rejecting what we cannot represent."""
    model_type = hf.get("model_type")
    if model_type not in BERT_FAMILY | {ENCODERLAB_MODEL_TYPE}:
        raise CheckpointError(
            f"{source}: model_type={model_type!r} is not a BERT checkpoint; encoderlab imports "
            f"model_type in {sorted(BERT_FAMILY)} (e.g. bert-base-uncased, all-MiniLM-L6-v2) and its own "
            f"{ENCODERLAB_MODEL_TYPE!r}"
        )
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise CheckpointError(
            f"{source}: position_embedding_type={hf['position_embedding_type']!r} is not supported; "
            "only 'absolute' (learned) positions can be imported"
        )
    act = hf.get("hidden_act", "gelu")
    if act not in HF_ACTIVATIONS:
        raise CheckpointError(f"{source}: hidden_act={act!r} is not supported; use one of {sorted(HF_ACTIVATIONS)}")
    kwargs = {ours: hf[name] for name, ours in HF_CONFIG_FIELDS.items() if hf.get(name) is not None}
    kwargs["layer_heads"] = _layer_heads_from_hf(hf, source)
    if hf.get(PER_LAYER_D_FF) is not None:
        kwargs["layer_d_ff"] = hf[PER_LAYER_D_FF]
    architecture = dict(ARCHITECTURE_FIELDS)
    if model_type == ENCODERLAB_MODEL_TYPE:
        architecture.update({name: hf[f"encoderlab_{name}"] for name in ARCHITECTURE_FIELDS
                             if f"encoderlab_{name}" in hf})
    try:
        return BertConfig(**kwargs, activation=HF_ACTIVATIONS[act], **architecture)
    except ConfigError as exc:
        raise CheckpointError(f"{source}: {exc}") from exc


def _layer_heads_from_hf(hf: dict[str, Any], source: str) -> list[int] | None:
    """Heads per block from `pruned_heads` ({"layer": [removed head, ...]}), or None when nothing was pruned."""
    pruned = hf.get("pruned_heads") or {}
    if not pruned:
        return None
    n_layers, n_heads = int(hf.get("num_hidden_layers", 12)), int(hf.get("num_attention_heads", 12))
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
    """A config.json that `transformers` reads as the same BERT. A model BERT cannot express (see
    ARCHITECTURE_FIELDS) gets model_type "encoderlab-bert" and its architecture fields instead."""
    hf_act = {"gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu", "silu": "silu"}[cfg.activation]
    hf = {name: getattr(cfg, ours) for name, ours in HF_CONFIG_FIELDS.items()}
    hf.update(model_type="bert", architectures=["BertModel"], hidden_act=hf_act,
              position_embedding_type="absolute")
    if not is_plain_bert(cfg):
        del hf["position_embedding_type"]
        hf.update(model_type=ENCODERLAB_MODEL_TYPE, architectures=["EncoderlabBertModel"],
                  **{f"encoderlab_{name}": getattr(cfg, name) for name in ARCHITECTURE_FIELDS})
    if cfg.layer_heads is not None and any(k < cfg.n_heads for k in cfg.layer_heads):
        # the kept heads sit first in the saved weights, so the removed ones are the last indices
        hf["pruned_heads"] = {str(i): list(range(k, cfg.n_heads))
                              for i, k in enumerate(cfg.layer_heads) if k < cfg.n_heads}
    if cfg.layer_d_ff is not None and any(f != cfg.d_ff for f in cfg.layer_d_ff):
        hf[PER_LAYER_D_FF] = list(cfg.layer_d_ff)
    return hf


def is_plain_bert(cfg: BertConfig) -> bool:
    """Whether `transformers`' BERT computes what this config describes (positions, norms, feed-forward)."""
    return all(getattr(cfg, name) == value for name, value in ARCHITECTURE_FIELDS.items())


def _find_weights(directory: Path) -> Path:
    for name in WEIGHT_FILES:
        if (directory / name).is_file():
            return directory / name
    raise CheckpointError(
        f"{str(directory)!r} has config.json but no weights; expected one of {', '.join(WEIGHT_FILES)}"
    )


def read_hf_state_dict(directory: Path) -> dict[str, torch.Tensor]:
    path = _find_weights(directory)
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, OSError, RuntimeError, EOFError, ValueError) as exc:
        raise CheckpointError(f"cannot read weights {str(path)!r}: {exc}. The file may be truncated; "
                              "re-export or re-download it") from exc
    # BertFor* checkpoints prefix the encoder with "bert."; old TF ports call LayerNorm params gamma/beta.
    renamed = {}
    for key, tensor in state.items():
        key = key.removeprefix("bert.")
        key = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", key)
        key = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", key)
        renamed[key] = tensor
    return renamed


def load_hf_bert(directory: str | Path) -> BertModel:
    """Build our BertModel from a Hugging Face BERT checkpoint directory, with strict key and shape checks."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"model directory {str(directory)!r} does not exist; check the path "
                              "or use the alias 'minilm' for the bundled all-MiniLM-L6-v2")
    cfg = config_from_hf(read_hf_config(directory), source=str(directory / "config.json"))
    hf_state = read_hf_state_dict(directory)
    has_pooler = "pooler.dense.weight" in hf_state
    cfg.pooler = has_pooler
    model = BertModel(cfg)
    ours = model.state_dict()
    mapping = key_map(cfg, pooler=has_pooler)

    missing = [hf for hf in mapping if hf not in hf_state]
    if missing:
        raise CheckpointError(f"{str(directory)!r}: weights are missing {len(missing)} BERT tensors, "
                              f"e.g. {missing[:3]}; is this a complete BERT checkpoint?")
    unexpected = [k for k in hf_state if k not in mapping and not IGNORED_HF_KEYS.match(k)]
    if unexpected:
        raise CheckpointError(f"{str(directory)!r}: weights hold {len(unexpected)} tensors that a BERT "
                              f"encoder with {cfg.n_layers} layers does not have, e.g. {unexpected[:3]}")
    converted = {}
    for hf_name, our_name in mapping.items():
        tensor = hf_state[hf_name]
        if tuple(tensor.shape) != tuple(ours[our_name].shape):
            raise CheckpointError(
                f"{str(directory)!r}: {hf_name} has shape {tuple(tensor.shape)} but config.json implies "
                f"{tuple(ours[our_name].shape)}; config.json and the weights do not belong together"
            )
        converted[our_name] = tensor.to(ours[our_name].dtype)
    model.load_state_dict(converted, strict=True)
    return model.eval()


def hf_state_dict(model: BertModel) -> dict[str, torch.Tensor]:
    ours = model.state_dict()
    return {hf: ours[name].detach().contiguous().cpu()
            for hf, name in key_map(model.cfg, pooler=model.pooler is not None).items()}


def save_hf_bert(model: BertModel, directory: str | Path) -> Path:
    """Write config.json + model.safetensors in Hugging Face BERT layout (atomically, file by file)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    hf_config = config_to_hf(model.cfg)
    atomic_write_bytes(directory / "model.safetensors", save(hf_state_dict(model), metadata={"format": "pt"}))
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
TIED_HF_KEYS = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")


def save_hf_bert_mlm(model: BertForMaskedLM, directory: str | Path) -> Path:
    """config.json + model.safetensors in `transformers.BertForMaskedLM` layout (encoder and MLM head)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    hf_config = config_to_hf(model.cfg)
    architecture = "BertForMaskedLM" if is_plain_bert(model.cfg) else "EncoderlabBertForMaskedLM"
    hf_config.update(architectures=[architecture], tie_word_embeddings=True)
    ours = model.state_dict()
    state = {f"bert.{hf}": tensor for hf, tensor in hf_state_dict(model.bert).items()}
    state.update({hf: ours[name].detach().contiguous().cpu() for hf, name in HF_MLM_HEAD.items()})
    atomic_write_bytes(directory / "model.safetensors", save(state, metadata={"format": "pt"}))
    atomic_write_json(directory / "config.json", hf_config)
    return directory


def load_hf_bert_mlm(directory: str | Path) -> BertForMaskedLM:
    """Our BertForMaskedLM from a Hugging Face BertForMaskedLM checkpoint (strict keys and shapes)."""
    directory = Path(directory)
    encoder = load_hf_bert(directory)
    hf_state = read_hf_state_dict(directory)  # "bert." already stripped
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
