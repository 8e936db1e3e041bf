"""Model families, one readable file each."""

from .bert import BertConfig, BertModel, EncoderBlock

__all__ = ["BertConfig", "BertModel", "EncoderBlock"]
