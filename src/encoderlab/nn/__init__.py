"""Building blocks, one concept per file: attention, packing, embeddings, rotary positions, feed-forward, pooling."""

from .attention import MultiHeadSelfAttention, reference_attention
from .embeddings import TextEmbeddings, sinusoidal_table
from .mlp import FeedForward
from .packing import Packing, padding_mask_to_bias, plan_length_groups
from .pooling import POOLINGS, pool
from .rotary import RotaryEmbedding, apply_rotary

__all__ = [
    "FeedForward",
    "MultiHeadSelfAttention",
    "POOLINGS",
    "Packing",
    "RotaryEmbedding",
    "TextEmbeddings",
    "apply_rotary",
    "padding_mask_to_bias",
    "plan_length_groups",
    "pool",
    "reference_attention",
    "sinusoidal_table",
]
