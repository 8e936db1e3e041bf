"""Building blocks, one concept per file: attention, embeddings, feed-forward, pooling."""

from .attention import MultiHeadSelfAttention, Packing, padding_mask_to_bias, reference_attention
from .embeddings import TextEmbeddings, sinusoidal_table
from .mlp import FeedForward
from .pooling import POOLINGS, pool

__all__ = [
    "FeedForward",
    "MultiHeadSelfAttention",
    "POOLINGS",
    "Packing",
    "TextEmbeddings",
    "padding_mask_to_bias",
    "pool",
    "reference_attention",
    "sinusoidal_table",
]
