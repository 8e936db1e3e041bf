"""Robustness to noise: how a model's numbers move as its input gets worse, level by level, against level 0.

Five kinds of model, one question each:
- a fine-tuned text classifier: accuracy and macro-F1 on typo-ridden text, and how many predictions flip;
- a text encoder: cosine between the embeddings of a text and of its noisy copy, and whether the noisy copy
  still finds its own clean text first among all of them (retrieval@1);
- a seq2seq model (e.g. grapheme-to-phoneme): exact match and token error rate on misspelt sources;
- an autoencoder: reconstruction error *against the clean input* when Gaussian noise is added (does it
  denoise, or copy the noise?), next to the error of the noisy input itself, and anomaly AUROC on noisy
  input when the data has anomaly labels;
- an audio classifier: accuracy, macro-F1 (and the same-speaker control) with white noise added at given
  signal-to-noise ratios (dB, relative to each clip's own power), against the clean clips.

Text noise is typos: each non-space character is hit with probability `rate` by one of four edits, chosen
uniformly — deleted, swapped with the next character, replaced, or followed by an inserted character. New
characters are drawn from the evaluated texts themselves, so the noise stays in the texts' script (Latin,
Han, …). Array noise is Gaussian with standard deviation `sigma` on the model's scale: pixels in [0, 1]
(clipped back into it), table columns standardised to unit variance (so sigma is a fraction of each
feature's spread). Every level uses its own fixed seed: reruns give the same noisy inputs.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from ..errors import InputDataError  # noqa: E402
from ..files import atomic_write_bytes  # noqa: E402
from .anomaly import roc_auc  # noqa: E402
from .classification import classification_report  # noqa: E402

TEXT_RATES = (0.0, 0.02, 0.05, 0.1, 0.2)
"""Default typo rates: the fraction of characters hit."""
ARRAY_SIGMAS = (0.0, 0.1, 0.2, 0.3, 0.5)
"""Default Gaussian noise levels, on the model's scale."""
AUDIO_SNRS = (20.0, 10.0, 0.0)
"""Default signal-to-noise ratios (dB) of the white noise added to audio clips."""


def add_typos(text: str, rate: float, rng: random.Random, alphabet: str) -> str:
    """`text` with each non-space character hit by one random typo with probability `rate`."""
    chars, out, i = text, [], 0
    while i < len(chars):
        char = chars[i]
        if char.isspace() or rng.random() >= rate:
            out.append(char)
        else:
            edit = rng.randrange(4)
            can_swap = i + 1 < len(chars) and not chars[i + 1].isspace()
            if edit == 1 and can_swap:  # swap with the next character
                out += [chars[i + 1], char]
                i += 1
            elif edit == 1 or edit == 2:  # replace (also a swap at the end of a word)
                out.append(rng.choice(alphabet))
            elif edit == 3:  # insert after
                out += [char, rng.choice(alphabet)]
            # edit == 0: delete
        i += 1
    return "".join(out)


def noisy_texts(texts: Sequence[str], rate: float, seed: int = 0) -> list[str]:
    """Typo-ridden copies of `texts` at `rate` (rate 0: the texts unchanged). Seeded per rate."""
    if not 0.0 <= rate <= 1.0:
        raise InputDataError(f"noise level {rate} is not a typo rate; give fractions of characters in [0, 1], "
                             "e.g. 0,0.05,0.1")
    if rate == 0:
        return list(texts)
    alphabet = "".join(ch for text in texts[:2000] for ch in text if not ch.isspace()) or "abcdefghijklmnopqrstuvwxyz"
    rng = random.Random(f"typos-{seed}-{rate}")
    return [add_typos(text, rate, rng, alphabet) for text in texts]


def _check_levels(levels: Sequence[float]) -> list[float]:
    levels = sorted(set(float(level) for level in levels))
    if not levels or not all(math.isfinite(level) and level >= 0 for level in levels):  # nan sorts anywhere
        raise InputDataError(f"noise levels {list(levels)} must be one or more numbers >= 0, e.g. 0,0.05,0.1")
    return levels if levels[0] == 0 else [0.0, *levels]  # level 0 is the reference every row is read against


def classifier_robustness(predict_proba: Callable[[list[str]], np.ndarray], texts: Sequence[str],
                          labels: Sequence[int], label_names: Sequence[str],
                          rates: Sequence[float] = TEXT_RATES, seed: int = 0) -> list[dict[str, float]]:
    """Per typo rate: accuracy, macro-F1, and the fraction of predictions that differ from the clean ones."""
    rows, clean = [], None
    for rate in _check_levels(rates):
        predicted = predict_proba(noisy_texts(texts, rate, seed)).argmax(axis=1)
        clean = predicted if clean is None else clean
        report = classification_report(list(labels), predicted.tolist(), list(label_names))
        rows.append({"noise": rate, "accuracy": report.accuracy, "macro_f1": report.macro_f1,
                     "flipped": float(np.mean(predicted != clean))})
    return rows


def encoder_robustness(encode: Callable[[list[str]], np.ndarray], texts: Sequence[str],
                       rates: Sequence[float] = TEXT_RATES, seed: int = 0) -> list[dict[str, float]]:
    """Per typo rate: mean, 5th-percentile and worst cosine of noisy to clean embeddings, and retrieval@1 —
    the fraction of noisy texts whose most similar clean text (of all `texts`) is their own, or the same text
    written again (a file's duplicate lines are one text twice, not a miss)."""
    if len(texts) < 2:
        raise InputDataError(f"{len(texts)} text(s): encoder robustness needs at least 2 (retrieval picks among them)")
    clean = _unit(encode(list(texts)))
    rows = []
    for rate in _check_levels(rates):
        noisy = clean if rate == 0 else _unit(encode(noisy_texts(texts, rate, seed)))
        cosine = (noisy * clean).sum(axis=1)
        nearest = (noisy @ clean.T).argmax(axis=1)
        found = [texts[j] == texts[i] for i, j in enumerate(nearest)]
        rows.append({"noise": rate, "mean_cosine": float(cosine.mean()),
                     "p5_cosine": float(np.percentile(cosine, 5)), "worst_cosine": float(cosine.min()),
                     "retrieval_at_1": float(np.mean(found))})
    return rows


def transducer_robustness(predict: Callable[[list[str]], list[str]], sources: Sequence[str],
                          score: Callable[[list[str]], dict[str, float]], rates: Sequence[float] = TEXT_RATES,
                          seed: int = 0) -> list[dict[str, float]]:
    """A string-to-string model (seq2seq) per typo rate: `score(outputs)` against the references (e.g. exact
    match, token error rate) and the fraction of outputs that differ from the clean ones. A source the typos
    erase entirely stays as it was (the model needs at least one character)."""
    rows, clean = [], None
    for rate in _check_levels(rates):
        noisy = [typed if typed.strip() else source for typed, source in zip(noisy_texts(sources, rate, seed),
                                                                              sources, strict=True)]
        outputs = predict(noisy)
        clean = outputs if clean is None else clean
        rows.append({"noise": rate, **score(outputs),
                     "changed": float(np.mean([a != b for a, b in zip(outputs, clean, strict=True)]))})
    return rows


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def array_robustness(reconstruct: Callable[[np.ndarray], np.ndarray], x: np.ndarray, images: bool,
                     sigmas: Sequence[float] = ARRAY_SIGMAS, score: Callable[[np.ndarray], np.ndarray] | None = None,
                     anomaly_labels: np.ndarray | None = None, seed: int = 0) -> list[dict[str, float]]:
    """Per Gaussian noise level, with `x` on the model's scale ([0, 1] images or standardised tables):
    mse of the reconstruction of the noisy input to the clean input (`recon_mse_to_clean`), mse of the noisy
    input itself (`noisy_input_mse`: what copying the noise would score), and with anomaly labels the AUROC
    of `score` on the noisy input."""
    x = np.asarray(x, dtype=np.float32)
    rows = []
    for sigma in _check_levels(sigmas):
        rng = np.random.default_rng([seed, int(round(sigma * 1e6))])
        noisy = x + rng.normal(0.0, sigma, size=x.shape).astype(np.float32) if sigma else x
        if images:
            noisy = np.clip(noisy, 0.0, 1.0)
        reconstruction = reconstruct(noisy)
        row = {"noise": sigma, "recon_mse_to_clean": float(np.mean((reconstruction - x) ** 2)),
               "noisy_input_mse": float(np.mean((noisy - x) ** 2))}
        if score is not None and anomaly_labels is not None and len(np.unique(anomaly_labels)) == 2:
            row["auroc"] = roc_auc(anomaly_labels, score(noisy))
        rows.append(row)
    return rows


def audio_robustness(predict_proba: Callable[[list[np.ndarray]], np.ndarray], waves: Sequence[np.ndarray],
                     labels: Sequence[int], label_names: Sequence[str], snrs: Sequence[float] = AUDIO_SNRS,
                     seed: int = 0, control: Sequence[int] = ()) -> list[dict[str, Any]]:
    """An audio classifier, clean and with white noise at each SNR (dB, `evaluation.audio.add_noise`: relative to
    each clip's own power, noisiest last): accuracy, macro-F1, the fraction of predictions that differ from the
    clean ones and, with `control` classes, the control accuracy (among those classes only). The first row's
    noise is 'clean'."""
    from .audio import noisy_copies, pair_accuracy

    levels = sorted({float(snr) for snr in snrs}, reverse=True)
    if not levels or not all(math.isfinite(snr) for snr in levels):
        raise InputDataError(f"SNRs {list(snrs)} must be one or more finite numbers of dB, e.g. 20,10,0")
    rows: list[dict[str, Any]] = []
    clean = None
    for snr in [None, *levels]:
        noisy = list(waves) if snr is None else noisy_copies(waves, snr, seed)
        proba = predict_proba(noisy)
        predicted = proba.argmax(axis=1)
        clean = predicted if clean is None else clean
        report = classification_report(list(labels), predicted.tolist(), list(label_names))
        row = {"noise": "clean" if snr is None else snr, "accuracy": report.accuracy, "macro_f1": report.macro_f1,
               "flipped": float(np.mean(predicted != clean))}
        if control:
            row["control_accuracy"] = pair_accuracy(labels, proba, control)[0]
        rows.append(row)
    return rows


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---:|" * len(keys)]
    lines += ["| " + " | ".join(_cell(row[k], k) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any, key: str) -> str:
    if isinstance(value, str):
        return value
    return f"{value:g}" if key == "noise" else f"{value:.4f}"


def plot_robustness(rows: Sequence[dict[str, float]], path: str | Path, title: str, xlabel: str) -> Path:
    """Every metric against the noise level: scores (accuracy, cosine, AUROC…) on the left axis, mean squared
    errors on the right one (on the only one when there are no scores), the noisy input's own error dashed."""
    noise = [row["noise"] for row in rows]
    named = any(isinstance(level, str) for level in noise)  # e.g. 'clean', 20, 10, 0 dB: evenly spaced, in order
    if named:
        noise = list(range(len(rows)))
    errors = [k for k in rows[0] if "mse" in k]
    scores = [k for k in rows[0] if k != "noise" and k not in errors]
    colors = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 3)
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    lines = []
    for key in scores:
        lines += ax.plot(noise, [row[key] for row in rows], marker="o", color=next(colors), label=key)
    if errors:
        error_ax = ax.twinx() if scores else ax
        for key in errors:
            dashed = "--" if key.startswith("noisy_input") else "-"  # the reference: copying the noise
            lines += error_ax.plot(noise, [row[key] for row in rows], marker="s", linestyle=dashed,
                                   color=next(colors), label=key)
        error_ax.set_ylabel("mean squared error")
    if named:
        ax.set_xticks(noise, [_cell(row["noise"], "noise") for row in rows])
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(lines, [line.get_label() for line in lines], fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
