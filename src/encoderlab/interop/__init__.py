"""Interoperability with other tools' file formats (Hugging Face BERT-family checkpoints)."""

from .hf_bert import key_map, load_hf_bert, save_hf_bert
from .hf_config import config_from_hf, config_to_hf
from .hf_layouts import HF_TO_OURS

__all__ = ["HF_TO_OURS", "config_from_hf", "config_to_hf", "key_map", "load_hf_bert", "save_hf_bert"]
