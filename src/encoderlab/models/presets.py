"""Named BERT sizes (Turc et al., 2019, "Well-Read Students Learn Better" for tiny … medium; Devlin et al.,
2019 for base and large): layers x d_model, with n_heads = d_model / 64 and d_ff = 4 * d_model.

    cfg = preset_config("bert-mini", vocab_size=8000, max_positions=128)   # a BertConfig
    list_presets()                                                         # the names
"""

from __future__ import annotations

import difflib
from typing import Any

from ..errors import ConfigError
from .bert import BertConfig

# name -> (n_layers, d_model)
PRESETS: dict[str, tuple[int, int]] = {
    "bert-tiny": (2, 128),
    "bert-mini": (4, 256),
    "bert-small": (4, 512),
    "bert-medium": (8, 512),
    "bert-base": (12, 768),
    "bert-large": (24, 1024),
}


def list_presets() -> list[str]:
    return list(PRESETS)


def preset_config(name: str, **overrides: Any) -> BertConfig:
    """The BertConfig of preset `name`, with any BertConfig field overridden (e.g. vocab_size=8000)."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown model preset {name!r}; {hint}choose one of {', '.join(PRESETS)}")
    n_layers, d_model = PRESETS[name]
    fields = {"n_layers": n_layers, "d_model": d_model, "n_heads": d_model // 64, "d_ff": 4 * d_model}
    return BertConfig(**{**fields, **overrides})
