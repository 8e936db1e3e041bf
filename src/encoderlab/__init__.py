"""encoderlab: build neural encoders from scratch, pretrain, fine-tune and deploy them.

Public API only; everything else lives in its own module.
"""

from .artifacts.aliases import resolve_model_path
from .artifacts.text_encoder import TextEncoder
from .errors import CheckpointError, ConfigError, EncoderlabError, InputDataError
from .interop.hf_bert import load_hf_bert, save_hf_bert
from .models.bert import BertConfig, BertModel
from .tokenization import TextTokenizer

__version__ = "0.1.0"

__all__ = [
    "BertConfig",
    "BertModel",
    "CheckpointError",
    "ConfigError",
    "EncoderlabError",
    "InputDataError",
    "TextEncoder",
    "TextTokenizer",
    "load_hf_bert",
    "resolve_model_path",
    "save_hf_bert",
]
