"""A trained seq2seq model (`encoderlab seq2seq`, an LSTM/GRU or a Transformer): strings in, strings out.

    g2p = Seq2SeqPredictor.from_dir("runs/seq2seq-g2p")      # the run directory or its final/
    g2p.predict(["hello", "encoderlab"])                     # ['HH AH L OW', ...]

final/ holds model.safetensors, config.yaml (the run's config; its `model` section, by `kind`, rebuilds the
network) and vocab.json (both vocabularies, lowercasing, the longest output), which marks the directory as
this kind.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import from_dict, read_yaml
from ..data.pairs import Vocabulary
from ..errors import CheckpointError, InputDataError
from ..models.recurrent import PAD, RecurrentConfig, Seq2Seq
from ..models.transformer_seq2seq import TransformerSeq2Seq, TransformerSeq2SeqConfig
from ..weights import load_weights
from .registry import Kind
from .runs import model_dir

VOCAB_FILE = "vocab.json"
"""Written next to the weights in OUT_DIR/final/: both vocabularies and the decoding settings."""



def pad(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    """Right-pad id lists with PAD -> (B, max length) long tensor."""
    out = torch.full((len(rows), max(len(r) for r in rows)), PAD, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, :len(row)] = torch.as_tensor(row, dtype=torch.long)
    return out



Model = Seq2Seq | TransformerSeq2Seq


@torch.no_grad()
def generate(model: Model, sources: Sequence[Sequence[int]], max_output_length: int, beam_size: int = 1,
             batch_size: int = 256, length_penalty: float = 0.0) -> list[list[int]]:
    """Output ids for every source id list; greedy for beam_size=1, else beam search (with GNMT's length
    penalty when length_penalty > 0)."""
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))  # similar lengths: little padding
    outputs: list[list[int]] = [[] for _ in sources]
    for lo in range(0, len(order), batch_size):
        chunk = order[lo:lo + batch_size]
        source = pad([sources[i] for i in chunk]).to(device)
        if beam_size == 1:
            ids = model.greedy(source, max_output_length)
        else:
            ids = model.beam_search(source, max_output_length, beam_size, length_penalty)
        for i, out in zip(chunk, ids, strict=True):
            outputs[i] = out
    return outputs



def build_saved_model(model: dict[str, Any]) -> Model:
    """The untrained network of a saved config's `model` section: its `kind` picks the architecture."""
    if model.get("kind") == "transformer":
        return TransformerSeq2Seq(from_dict(TransformerSeq2SeqConfig, model, "model."))
    return Seq2Seq(from_dict(RecurrentConfig, model, "model."))


def seq2seq_dir(path: str | Path) -> Path | None:
    """The directory holding a seq2seq model's final weights, for a run dir or its final/ dir; else None."""
    return model_dir(path, VOCAB_FILE)


class Seq2SeqPredictor:
    """A trained model with its vocabularies: strings in, strings out.

        g2p = Seq2SeqPredictor.from_dir("runs/seq2seq-g2p")
        g2p.predict(["hello", "encoderlab"])          # ['HH AH L OW', ...]
    """

    def __init__(self, model: Model, info: dict[str, Any]) -> None:
        self.model = model.eval()
        self.source_vocab = Vocabulary.from_dict(info["source"])
        self.target_vocab = Vocabulary.from_dict(info["target"])
        self.lowercase = bool(info["lowercase"])
        self.max_output_length = int(info["max_output_length"])
        self.directory: Path | None = None
        """The final/ directory it was loaded from (from_dir), else None."""

    @classmethod
    def from_dir(cls, path: str | Path, device: str = "cpu") -> Seq2SeqPredictor:
        directory = seq2seq_dir(path)
        if directory is None and not Path(path).expanduser().exists():
            raise CheckpointError(f"{str(path)!r} does not exist; check the path (the out_dir of a finished "
                                  "`encoderlab seq2seq` run)")
        if directory is None:
            raise CheckpointError(f"{str(path)!r} is not a seq2seq run: no final/{VOCAB_FILE}; pass the out_dir of "
                                  "a finished `encoderlab seq2seq` run")
        model = build_saved_model(read_yaml(directory / "config.yaml")["model"])
        weights = load_weights(directory / "model.safetensors", device)
        if isinstance(model, TransformerSeq2Seq):
            model.load_weights(weights)  # a shared embedding table is stored once
        else:
            model.load_state_dict(weights)
        predictor = cls(model.to(device), json.loads((directory / VOCAB_FILE).read_text(encoding="utf-8")))
        predictor.directory = directory
        return predictor

    def source_ids(self, sources: Sequence[str]) -> list[list[int]]:
        """Trimmed (and lowercased, if the run lowercased) sources -> token ids; empty or too long is an error
        naming the input (counted from 1)."""
        if isinstance(sources, str):
            raise InputDataError("seq2seq models take a list of strings; wrap a single one: predict([text])")
        limit = getattr(self.model.cfg, "max_positions", None)  # a Transformer's position table
        ids = []
        for i, text in enumerate(sources):
            text = text.strip().lower() if self.lowercase else text.strip()
            encoded = self.source_vocab.encode(text)
            if not encoded:
                raise InputDataError(f"input {i + 1} ({sources[i]!r}) is empty; every input needs at least one token")
            if limit is not None and len(encoded) > limit:
                raise InputDataError(f"input {i + 1} ({sources[i][:40]!r}...) has {len(encoded)} tokens, more than the "
                                     f"model's max_positions={limit}; split it into shorter pieces")
            ids.append(encoded)
        return ids

    def predict(self, sources: Sequence[str], beam_size: int = 1, batch_size: int = 256,
                length_penalty: float = 0.0) -> list[str]:
        """One output string per source (targets' tokens joined by '', ' ' or detokenised subwords, as in the
        training data)."""
        outputs = generate(self.model, self.source_ids(sources), self.max_output_length, beam_size, batch_size,
                           length_penalty)
        return [self.target_vocab.decode(out) for out in outputs]

    @torch.no_grad()
    def encode(self, sources: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """(N, d) float32: the encoder's vector of each source (LSTM: its pooled vector; Transformer: the mean
        of its outputs over the source's tokens)."""
        ids = self.source_ids(sources)
        device = next(self.model.parameters()).device
        vectors = [self.model.sentence_vectors(pad(ids[lo:lo + batch_size]).to(device)).float().cpu()
                   for lo in range(0, len(ids), batch_size)]
        return torch.cat(vectors).numpy()

    from_run = from_dir  # the name before the saved-model contract


KIND = Kind(
    name="seq2seq",
    summary="a seq2seq model. Use `encoderlab seq2seq-predict --model {path} SOURCE ...`; `robustness` takes it too",
    holds=lambda d: (d / VOCAB_FILE).is_file(),
    load=Seq2SeqPredictor.from_dir,
)
