"""The tables of the Hugging Face BERT families: how each names an encoder's tensors (`LAYOUTS`) and its config
fields, which keys its checkpoints hold besides the encoder, and which model types we read. The families and
their differences are described in interop/hf_bert.py; hf_config.py translates config.json with these tables,
hf_bert.py moves the weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
