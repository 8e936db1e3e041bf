"""Interoperability with other tools' file formats (Hugging Face BERT-family checkpoints)."""

from .hf_bert import HF_TO_OURS, config_from_hf, config_to_hf, key_map, load_hf_bert, save_hf_bert

__all__ = ["HF_TO_OURS", "config_from_hf", "config_to_hf", "key_map", "load_hf_bert", "save_hf_bert"]
