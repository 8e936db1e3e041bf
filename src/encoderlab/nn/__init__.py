"""Building blocks, one concept per file: attention, packing, embeddings, feed-forward, pooling."""

from .attention import MultiHeadSelfAttention, reference_attention
from .embeddings import TextEmbeddings, sinusoidal_table
from .mlp import FeedForward
from .packing import Packing, padding_mask_to_bias, plan_length_groups
from .pooling import POOLINGS, pool

__all__ = [
    "FeedForward",
    "MultiHeadSelfAttention",
    "POOLINGS",
    "Packing",
    "TextEmbeddings",
    "padding_mask_to_bias",
    "plan_length_groups",
    "pool",
    "reference_attention",
    "sinusoidal_table",
]
