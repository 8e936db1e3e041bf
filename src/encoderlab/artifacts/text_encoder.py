"""`TextEncoder`: a BERT encoder + its tokenizer + a pooling recipe -> sentence embeddings.

    model = TextEncoder.from_pretrained("minilm")          # or a checkpoint directory
    vectors = model.encode(["a sentence", "another"])      # (2, 384) float32, L2-normalised
    hidden = model(input_ids, attention_mask)               # (B, T, 384) last hidden states

Checkpoints with sentence-transformers files set the defaults the way sentence-transformers reads them:
`sentence_bert_config.json` gives `max_seq_length` (and `do_lower_case`), `1_Pooling/config.json` the
pooling, and a `Normalize` module in `modules.json` turns on L2 normalisation.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..errors import CheckpointError, InputDataError
from ..files import atomic_write_json
from ..interop.hf_bert import load_hf_bert, save_hf_bert
from ..models.bert import BertModel
from ..nn.inference_copy import InferenceCopy
from ..nn.pooling import POOLINGS, pool
from ..nn.prepacked_linear import bf16_matmul_native, has_forward_hooks, prepack_linears
from ..nn.windows import LongText, WindowPool, split_windows
from ..sharding import auto_shards, plan_parts, run_parts
from ..tokenization import TextTokenizer
from .aliases import resolve_model_path
from .registry import Kind

EMULATED_BF16 = ("precision='bf16' on a CPU without native bf16 (AVX-512 BF16 or AMX): oneDNN emulates it, which is "
                 "several times slower than fp32 (5x on AVX2, benchmarks/isa_ceiling.py) for no gain; use fp32 here")

ST_POOLING_FLAGS = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean",
                    "pooling_mode_max_tokens": "max"}


def _read_json(path: Path) -> dict | list | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{str(path)!r} is not valid JSON ({exc}); fix or delete it") from exc


def sentence_transformers_defaults(directory: Path) -> dict:
    """pooling / normalize / max_seq_length / do_lower_case from sentence-transformers files, if present."""
    defaults: dict = {}
    st_config = _read_json(directory / "sentence_bert_config.json")
    if isinstance(st_config, dict):
        if st_config.get("max_seq_length") is not None:
            defaults["max_seq_length"] = int(st_config["max_seq_length"])
        defaults["do_lower_case"] = bool(st_config.get("do_lower_case", False))
    modules = _read_json(directory / "modules.json")
    if isinstance(modules, list):
        defaults["normalize"] = any(str(m.get("type", "")).endswith("Normalize") for m in modules)
        pooling_dirs = [m.get("path", "") for m in modules if str(m.get("type", "")).endswith("Pooling")]
    else:
        pooling_dirs = ["1_Pooling"]
    for sub in pooling_dirs:
        pooling_path = directory / sub / "config.json"
        pooling_config = _read_json(pooling_path)
        if not isinstance(pooling_config, dict):
            continue
        modes = [mode for flag, mode in ST_POOLING_FLAGS.items() if pooling_config.get(flag)]
        other = [k for k, v in pooling_config.items()
                 if k.startswith("pooling_mode") and v and k not in ST_POOLING_FLAGS]
        if len(modes) != 1 or other:
            raise CheckpointError(
                f"{str(pooling_path)!r} asks for pooling {modes + other}; encoderlab supports exactly one of "
                "cls / mean / max. Pass pooling= explicitly to encode() after fixing the file"
            )
        defaults["pooling"] = modes[0]
    return defaults


def check_texts(texts: Sequence[str] | str) -> list[str]:
    """A list of the texts (a single string is one text); anything that is not a string is a clear error."""
    if isinstance(texts, str):
        return [texts]
    if not isinstance(texts, Sequence):
        raise InputDataError(f"texts must be a list of strings, got {type(texts).__name__}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputDataError(
                f"texts[{i}] is {type(text).__name__} ({text!r:.40}), not a string; convert it with str() "
                "or remove it"
            )
    return list(texts)


def special_affixes(tokenizer: TextTokenizer) -> tuple[int, int]:
    """How many special tokens the tokenizer puts before and after a text's pieces ([CLS] x [SEP]: (1, 1))."""
    specials = tokenizer.tokenizer.encode("a").special_tokens_mask
    n_prefix = next((i for i, special in enumerate(specials) if not special), len(specials))
    n_suffix = next((i for i, special in enumerate(reversed(specials)) if not special), 0)
    return n_prefix, n_suffix


def text_windows(tokenizer: TextTokenizer, texts: Sequence[str], long_text: LongText) -> tuple[list[list[int]],
                                                                                                 list[int]]:
    """Every text's windows of token ids (nn/windows.py), text after text, and how many windows each text has.
    A text that fits in one window gives exactly its truncated ids (`tokenizer.encode_ids(texts, window)`)."""
    if not long_text.chunked:
        return tokenizer.encode_ids(list(texts), long_text.window), [1] * len(texts)
    n_prefix, n_suffix = special_affixes(tokenizer)
    windows, counts = [], []
    for encoding in tokenizer.tokenizer.encode_batch(list(texts)):  # whole texts: TextTokenizer never truncates
        split = split_windows(encoding.ids, long_text, n_prefix, n_suffix)
        windows.extend(split)
        counts.append(len(split))
    return windows, counts


class TextEncoder(nn.Module):
    """A BERT-family encoder, its tokenizer and a pooling recipe: texts -> sentence embeddings.

    `encode` is the fast inference path (length-sorted batches, padding-free attention, CPU shards, optional
    bf16); `forward` returns the last hidden states for training. Loads Hugging Face checkpoints (bert,
    distilbert, roberta, xlm-roberta), our own runs and aliases; saves in the Hugging Face + sentence-transformers
    layout.
    """

    kind = "text-encoder"

    def __init__(self, bert: BertModel, tokenizer: TextTokenizer, pooling: str = "mean", normalize: bool = True,
                 max_seq_length: int | None = None, do_lower_case: bool = False):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling={pooling!r} is unknown; choose one of {POOLINGS}")
        prepack_linears(bert)  # CPU fp32 inference on oneDNN-packed weights; training and GPUs unaffected
        self.bert = bert
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.normalize = normalize
        self.max_seq_length = min(max_seq_length or bert.cfg.max_positions, bert.cfg.max_positions)
        self.do_lower_case = do_lower_case
        self._bf16 = InferenceCopy(torch.bfloat16)  # the bf16 twin for CPU inference, cast on first use

    # ----------------------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, device: str | torch.device | None = None) -> TextEncoder:
        """Load a Hugging Face BERT-family checkpoint directory (bert, distilbert, roberta, xlm-roberta), an
        encoderlab run directory, or an alias such as 'minilm'."""
        directory = resolve_model_path(name_or_path)
        bert = load_hf_bert(directory)
        tokenizer = TextTokenizer.from_dir(directory)
        if tokenizer.vocab_size > bert.cfg.vocab_size:
            raise CheckpointError(
                f"{str(directory)!r}: the tokenizer has {tokenizer.vocab_size} tokens but the model's embedding "
                f"table only {bert.cfg.vocab_size}; the tokenizer belongs to another model"
            )
        defaults = sentence_transformers_defaults(directory)
        model = cls(bert, tokenizer, **defaults).eval()  # inference by default: dropout off
        return model.to(device) if device is not None else model

    @classmethod
    def from_dir(cls, path: str | Path, device: str | torch.device | None = None) -> TextEncoder:
        """The saved-model contract's name for `from_pretrained`."""
        return cls.from_pretrained(path, device)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Hugging Face layout (config.json, model.safetensors, tokenizer) + sentence-transformers files."""
        directory = Path(directory)
        save_hf_bert(self.bert, directory)
        self.tokenizer.save(directory)
        atomic_write_json(directory / "sentence_bert_config.json",
                          {"max_seq_length": self.max_seq_length, "do_lower_case": self.do_lower_case})
        atomic_write_json(directory / "1_Pooling" / "config.json", {
            "word_embedding_dimension": self.dim,
            **{flag: mode == self.pooling for flag, mode in ST_POOLING_FLAGS.items()},
            "pooling_mode_mean_sqrt_len_tokens": False,
        })
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]
        if self.normalize:
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                            "type": "sentence_transformers.models.Normalize"})
        atomic_write_json(directory / "modules.json", modules)
        return directory

    # ----------------------------------------------------------------------------------------- compute
    @property
    def dim(self) -> int:
        return self.bert.cfg.d_model

    @property
    def device(self) -> torch.device:
        return next(self.bert.parameters()).device

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) ids and mask -> (B, T, C) last hidden states."""
        return self.bert(input_ids, attention_mask, token_type_ids)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], batch_size: int = 32, pooling: str | None = None,
               normalize: bool | None = None, max_length: int | None = None,
               show_progress: bool | None = None, precision: str = "fp32",
               shards: int | Literal["auto"] = "auto", long_text: str = "truncate", stride: int | None = None,
               window_pooling: str = "mean") -> np.ndarray:
        """Embed `texts` -> float32 array (N, d) in input order.

        Texts are sorted by token count so each batch pads little, then put back in order. Texts longer
        than `max_length` tokens (default: the checkpoint's max_seq_length) are truncated. precision="bf16"
        runs the encoder in bf16: on a CPU with native bf16 (AVX-512 BF16, AMX) a bf16 copy of the model end to
        end, elsewhere bf16 autocast (fp32 is exact; bf16 keeps a cosine of ≥ 0.9999 to it on minilm).

        long_text="chunk" reads long texts whole instead: each is cut into windows of `max_length` pieces that
        start `stride` pieces apart (default: 3/4 of a window; nn/windows.py), every window is embedded like a
        short text (pooled, normalised if `normalize`), and a text's window vectors are pooled into one by
        `window_pooling` (mean or max; then normalised again if `normalize`). All windows of all texts are
        batched together, so this is one call whatever the lengths. A text that fits in one window gets exactly
        the vector truncation gives it.

        shards: CPU only. Each batch is dealt into this many parts of equal work that run side by side, one
        thread each, torch's intra-op threads divided among them. One batch split across threads inside
        every operation speeds up its big matmuls, but not its many small operations (LayerNorm, GELU,
        gathers, attention on small length groups); independent parts run those in parallel too. The
        result equals shards=1 up to summation order (~1e-7). "auto": torch.get_num_threads() on a CPU
        whose thread counts are per thread (OpenMP builds), but a batch is dealt only into parts of at least
        MIN_SHARD_TOKENS tokens (a batch too small to split still runs beside the next one), and with
        WHOLE_BATCHES_FROM or more batches per shard whole batches run side by side instead; 1 on a GPU, or
        while forward hooks watch the model (they expect one batch at a time, in order, e.g. int8
        calibration). A number: exactly that many parts per batch (fewer only if it has fewer texts).
        1 keeps all of encode in the calling thread.
        """
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision={precision!r} is unknown; choose 'fp32' or 'bf16'")
        texts = check_texts(texts)
        pooling = pooling or self.pooling
        if pooling not in POOLINGS:
            raise ValueError(f"pooling={pooling!r} is unknown; choose one of {POOLINGS}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        normalize = self.normalize if normalize is None else normalize
        max_length = min(max_length or self.max_seq_length, self.bert.cfg.max_positions)
        reading = None  # truncate: the path every release had
        if long_text != "truncate":
            reading = LongText(long_text, max_length, stride, window_pooling)  # type: ignore[arg-type]
        if reading is not None and reading.pooling == "attention":
            raise ValueError("window_pooling='attention' needs learned weights (a fine-tuned classifier has them); "
                             "a text encoder pools windows by 'mean' or 'max'")
        self.resolve_shards(shards)  # a bad value fails before any work
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)

        # sentence-transformers strips each text (and lower-cases it if its config says so) before tokenising
        prepared = [t.strip().lower() if self.do_lower_case else t.strip() for t in texts]
        if reading is None:
            ids, counts = self.tokenizer.encode_ids(prepared, max_length), [1] * len(texts)
        else:  # one id list per window, text after text
            ids, counts = text_windows(self.tokenizer, prepared, reading)
        if show_progress is None:
            show_progress = len(ids) > 8 * batch_size and sys.stderr.isatty()
        with tqdm(total=len(ids), desc="encode", unit="text" if reading is None else "window",
                  disable=not show_progress) as progress:
            out = self.embed_ids(ids, batch_size, pooling, precision, shards,
                                 on_done=lambda rows: progress.update(len(rows)))
        if normalize:
            out = F.normalize(torch.from_numpy(out), p=2, dim=1).numpy()
        if len(ids) == len(texts):  # one window per text: nothing to pool
            return out
        pooled = WindowPool(window_pooling)(torch.from_numpy(out), counts)  # (N, C)
        if normalize:
            several = torch.tensor(counts) > 1  # a one-window text keeps its vector bit for bit
            pooled[several] = F.normalize(pooled[several], p=2, dim=1)
        return pooled.numpy()

    @torch.inference_mode()
    def embed_ids(self, ids: Sequence[Sequence[int]], batch_size: int = 32, pooling: str | None = None,
                  precision: str = "fp32", shards: int | Literal["auto"] = "auto",
                  on_done: Callable[[np.ndarray], None] | None = None) -> np.ndarray:
        """Pooled, not yet normalised vectors (len(ids), d) float32 of token-id lists that already carry their
        special tokens (the tokenizer's `encode_ids`): encode's inference after tokenising, shared with the
        server. Sorted by length into batches of `batch_size`, dealt into `shards` (see encode), put back in
        order; `on_done(rows)` after each part. bf16 on a CPU with native bf16 runs the model's bf16 twin
        (nn/inference_copy.py); elsewhere bf16 autocast."""
        pooling = pooling or self.pooling
        device = self.device
        most_shards = self.resolve_shards(shards, device)
        parts = plan_parts([len(seq) for seq in ids], batch_size, most_shards, auto=shards == "auto")
        bert, autocast = self.bert, precision == "bf16"
        if autocast and device.type == "cpu" and bf16_matmul_native() and not has_forward_hooks(self.modules()):
            bert, autocast = self._bf16.of(self.bert), False
        elif autocast and device.type == "cpu":
            warnings.warn(EMULATED_BF16, stacklevel=2)
        out = np.empty((len(ids), self.dim), dtype=np.float32)

        def embed(rows: np.ndarray) -> None:
            batch = self.tokenizer.pad([ids[i] for i in rows])
            mask = batch.attention_mask.to(device)
            # inference mode and autocast hold per thread: a shard's worker thread has to enter its own
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                hidden = bert(batch.input_ids.to(device), mask, batch.token_type_ids.to(device))
            out[rows] = pool(hidden.float(), mask, pooling).cpu().numpy()  # parts never share rows

        was_training = self.training
        switch = any(m.training for m in self.modules())  # eval() walks every module: only when one needs it
        if switch:
            self.eval()
        try:
            run_parts(embed, parts, most_shards, on_done=on_done or (lambda rows: None))
        finally:
            if switch:
                self.train(was_training)
        return out

    def resolve_shards(self, shards: int | str = "auto", device: torch.device | None = None) -> int:
        """encode's `shards` argument -> the number of parts each batch is dealt into on `device` (default:
        the model's), as encode would use it; see encode for what "auto" picks."""
        device = self.device if device is None else device
        if shards == "auto":
            return auto_shards(device, has_forward_hooks(self.modules()))
        if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
            raise ValueError(f"shards={shards!r} must be 'auto' or a whole number >= 1")
        if shards > 1 and device.type != "cpu":
            raise ValueError(f"shards={shards} splits batches across CPU cores; the model is on {device}, "
                             "use shards=1 (or 'auto')")
        return shards

    def similarity(self, texts: Sequence[str], **encode_kwargs) -> np.ndarray:
        """Cosine similarity matrix (N, N) of `texts`."""
        vectors = self.encode(texts, **{**encode_kwargs, "normalize": False})
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = vectors / np.maximum(norms, 1e-12)
        return unit @ unit.T


KIND = Kind(
    name="text-encoder",
    summary="a text encoder. Embed texts with `encoderlab encode --model {path} --input texts.txt`; `similarity`, "
            "`export`, `bench`, `robustness` and `finetune init=` take it too",
    holds=lambda d: (d / "config.json").is_file(),
    load=TextEncoder.from_pretrained,
)
