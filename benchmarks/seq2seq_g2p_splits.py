"""Where a G2P run's validation and test numbers come from: greedy word accuracy of a trained CMUdict run on the
2,000-word validation sample that training reports (`max_eval_examples=2000`), on the first 2,000 validation
words in file order (alphabetical: what training reported before the sample was made random, commit 2accc90's
`first_sources`), on the whole validation split and on the whole test split, each broken down by how many
pronunciations a word has (a word with several is right if the output is any of them) and by word length.

    OMP_NUM_THREADS=1 python benchmarks/seq2seq_g2p_splits.py runs/g2p-lstm runs/g2p-transformer

One JSON line per run and subset. Uses the run's own config (split, seed, lowercasing) and saved model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from encoderlab.artifacts.seq2seq import generate
from encoderlab.config import load_config
from encoderlab.data.pairs import Pairs
from encoderlab.tasks.seq2seq import Seq2SeqConfig, Seq2SeqPredictor, prepare_data, sample_sources


def word_accuracy(predictor: Seq2SeqPredictor, pairs: Pairs, max_output_length: int) -> dict[str, float]:
    refs = pairs.references()
    words = list(refs)
    started = time.process_time()
    outputs = generate(predictor.model, predictor.source_ids(words), max_output_length)
    right = [predictor.target_vocab.decode(o) in refs[w] for o, w in zip(outputs, words, strict=True)]

    def share(keep) -> dict[str, float]:
        chosen = [r for r, w in zip(right, words, strict=True) if keep(w)]
        return {"words": len(chosen), "word_accuracy": round(100 * sum(chosen) / max(1, len(chosen)), 2)}

    return {"all": share(lambda w: True), "one_pronunciation": share(lambda w: len(refs[w]) == 1),
            "several_pronunciations": share(lambda w: len(refs[w]) > 1),
            "length_1_5": share(lambda w: len(w) <= 5), "length_6_9": share(lambda w: 6 <= len(w) <= 9),
            "length_10_up": share(lambda w: len(w) >= 10), "decode_cpu_s": round(time.process_time() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="CMUdict seq2seq runs (out_dir)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for run in args.runs:
        cfg = load_config(Seq2SeqConfig, Path(run) / "config.yaml", [])
        data = prepare_data(cfg)
        predictor = Seq2SeqPredictor.from_dir(run)
        first = set(list(dict.fromkeys(data.validation.sources))[:2000])  # file order: alphabetical
        subsets = {"validation_first_2000": data.validation.subset(
                       i for i, s in enumerate(data.validation.sources) if s in first),
                   "validation_sample_2000": sample_sources(data.validation, 2000, cfg.seed),
                   "validation_all": data.validation, "test_all": data.test}
        for name, pairs in subsets.items():
            print(json.dumps({"run": run, "subset": name, **word_accuracy(predictor, pairs, data.max_output_length)}),
                  flush=True)


if __name__ == "__main__":
    main()
