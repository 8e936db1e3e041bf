"""The saved-model registry: one place that answers "what is this directory, and how do I use it".

    detected = identify("runs/tweets")       # Detected(kind=<classifier>, directory=runs/tweets/final)
    model = load("runs/tweets")              # a TextClassifier
    detect("notes.txt")                      # None: not a saved model (identify raises, saying what it is)

Every command and the server ask it instead of looking for marker files themselves. A path may be a saved
model's directory, the run directory holding it in final/, or an alias such as `minilm`.

Each kind lives in one file of this package, which defines the loaded class (with `from_dir`) and a
`KIND = Kind(...)` naming its marker. The kinds are tried in the order of `KIND_MODULES`: the first whose
marker a directory holds wins (a classifier also holds an encoder's config.json, so `text_encoder` is last).
"""

from __future__ import annotations

import functools
import importlib
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import CheckpointError, EncoderlabError
from .aliases import ALIASES, resolve_alias
from .runs import FINAL_DIR, command_of

KIND_MODULES: tuple[str, ...] = ("classifier", "tagger", "seq2seq", "autoencoder", "recommender", "audio",
                                 "multimodal", "image_text", "text_encoder")
"""The modules of this package that define a `KIND`, in detection order."""


@dataclass(frozen=True)
class Kind:
    """One kind of saved model."""

    name: str
    """Short name: text-encoder, classifier, tagger, seq2seq, autoencoder, recommender, audio-classifier."""
    summary: str
    """What it is and which commands take it (error messages quote it); `{path}` stands for the model's path."""
    holds: Callable[[Path], bool]
    """Whether a directory holds a model of this kind (looks at marker files only; loads nothing)."""
    load: Callable[[Path], Any]
    """The loaded model of a directory that `holds` it."""


@dataclass(frozen=True)
class Detected:
    kind: Kind
    directory: Path
    """The saved model's own directory (a run's final/ when given the run)."""


# ------------------------------------------------------------------------------------------- what it can do
@runtime_checkable
class Encodes(Protocol):
    """Inputs -> one float32 vector per input, (N, d)."""

    def encode(self, inputs: Any, batch_size: int = ...) -> np.ndarray: ...


@runtime_checkable
class Predicts(Protocol):
    """Inputs -> one prediction per input (a label, a tag sequence, an output string)."""

    def predict(self, inputs: Any, batch_size: int = ...) -> list: ...


@runtime_checkable
class Scores(Protocol):
    """Inputs -> one anomaly score per input (higher = more anomalous)."""

    def score(self, inputs: Any) -> np.ndarray: ...


# ------------------------------------------------------------------------------------------- the registry
@functools.cache
def kinds() -> tuple[Kind, ...]:
    """Every registered kind, in detection order."""
    return tuple(importlib.import_module(f"{__package__}.{name}").KIND for name in KIND_MODULES)


def kind_named(name: str) -> Kind:
    for kind in kinds():
        if kind.name == name:
            return kind
    raise KeyError(f"no saved-model kind {name!r}; known: {', '.join(k.name for k in kinds())}")


def detect(path: str | Path) -> Detected | None:
    """The kind and directory of the saved model at `path` (its directory, its run, or an alias); None when
    `path` holds no saved model."""
    key = str(path)
    candidate = Path(key).expanduser()
    if key.lower() in ALIASES and not candidate.exists():
        return Detected(kind_named("text-encoder"), resolve_alias(key))
    if not candidate.is_dir():
        return None
    for directory in (candidate, candidate / FINAL_DIR):
        for kind in kinds():
            if directory.is_dir() and kind.holds(directory):
                return Detected(kind, directory)
    return None


def identify(path: str | Path) -> Detected:
    """`detect`, or a CheckpointError that says what `path` is instead and what to pass."""
    found = detect(path)
    if found is not None:
        return found
    key = str(path)
    candidate = Path(key).expanduser()
    if not candidate.exists():
        aliases = ", ".join(sorted(ALIASES))
        raise CheckpointError(f"model {key!r} does not exist and is not a known alias ({aliases}); check the path")
    if not candidate.is_dir():
        raise CheckpointError(f"model {key!r} is a file; pass a saved model's directory (or the run that holds it "
                              f"in {FINAL_DIR}/)")
    if (candidate / "config.yaml").is_file() and not (candidate / FINAL_DIR).is_dir():
        from ..config import read_yaml

        try:
            saved = read_yaml(candidate / "config.yaml")
        except EncoderlabError:  # an unreadable config.yaml names no command
            saved = {}
        command = command_of(saved)
        how = (f"`encoderlab {command} --resume {shlex.quote(key)}`" if command else
               f"--resume {shlex.quote(key)} on the command that started it")
        raise CheckpointError(f"{key!r} is an encoderlab run that has not finished (no {FINAL_DIR}/ yet); continue "
                              f"it with {how}, or wait for it to end")
    known = "; ".join(f"{k.name}: {k.summary.format(path='PATH')}" for k in kinds())
    raise CheckpointError(f"{key!r} holds no saved model encoderlab knows. Known kinds — {known}")


def load(path: str | Path) -> Any:
    """The saved model at `path`, loaded as its kind's class (TextEncoder, TextClassifier, TokenTagger,
    Seq2SeqPredictor, ArrayEncoder, AudioClassifier)."""
    found = identify(path)
    return found.kind.load(found.directory)


def describe(path: str | Path) -> str:
    """One line: what kind of saved model `path` holds and which commands take it."""
    found = identify(path)
    return f"{found.kind.name} ({found.kind.summary.format(path=path)})"
