"""Hugging Face BERT-family checkpoints <-> `encoderlab.models.bert.BertModel`: the weights. The families'
tables are in hf_layouts.py, the config.json translation in hf_config.py.

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

import re
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from ..errors import CheckpointError, ConfigError
from ..files import atomic_write_bytes, atomic_write_json
from ..models.bert import BertConfig, BertForMaskedLM, BertModel
from .hf_config import (
    config_from_hf,
    config_to_hf,
    is_plain_bert,
    is_roformer,
    read_hf_config,
    saved_layout,
    warn_if_encoderlab_only,
)
from .hf_layouts import (
    EXTENSION_TO_OURS,
    LAYOUTS,
    ROFORMER,
    ROFORMER_SINUSOIDS,
    WEIGHT_FILES,
)


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
