"""Training tokens/s of our MLM step vs transformers' BertForMaskedLM: same config, weights, data, masks, threads.

One training step = forward, MLM loss, backward, AdamW step, on a batch of real BBC news documents of
different lengths (one document per sequence, padded to the longest in the batch). Ours predicts only the
masked positions and skips padding; transformers computes logits for every position and ignores the
unmasked ones with label -100. A third column, our encoder with logits at every position, separates the
gain of the sparse head from that of skipping padding; a fourth is our default for pretraining, rotary
positions (transformers has no rotary BERT, so it is compared with our learned-position model: the cost of
rotating queries and keys). Steps rotate between the sides; median step time. Tokens/s counts real
(non-padding) tokens.

    .venv/bin/python benchmarks/pretrain_cpu.py [--presets bert-tiny,bert-mini] [--steps 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from encoderlab.data.catalog import load_text_splits  # noqa: E402
from encoderlab.data.mlm import DocumentSequences, MLMCollator, MLMMasker, write_token_file  # noqa: E402
from encoderlab.interop.hf_bert import save_hf_bert_mlm  # noqa: E402
from encoderlab.models.bert import BertForMaskedLM  # noqa: E402
from encoderlab.models.presets import preset_config  # noqa: E402
from encoderlab.tokenization import TokenizerConfig, train_tokenizer  # noqa: E402


def make_batches(n_batches: int, batch_size: int, max_seq_len: int, vocab_size: int, seed: int = 0):
    articles = load_text_splits("bbc-news", split="0.9,0.1,0.0").train.texts
    tokenizer = train_tokenizer(articles[:800], TokenizerConfig(vocab_size=vocab_size))
    # One paragraph per sequence (the headline and paragraphs of an article): lengths from a few tokens
    # to max_seq_len, as in a corpus of short documents.
    texts = [p for article in articles[:300] for p in article.split("\n\n") if p.strip()]
    tmp = tempfile.mkdtemp()
    tokens = write_token_file(texts, tokenizer, f"{tmp}/bench")
    docs = DocumentSequences(tokens, max_seq_len, tokenizer.special_id("[CLS]"))
    masker = MLMMasker(0.15, tokenizer.special_id("[MASK]"), tokenizer.vocab_size, tokenizer.special_ids())
    collate = MLMCollator(masker, tokenizer.pad_id)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    batches = []
    for _ in range(n_batches):
        idx = rng.choice(len(docs), batch_size, replace=False)
        batch = collate([docs[int(i)] for i in idx])
        labels = torch.full_like(batch["input_ids"], -100).view(-1)
        labels[batch["masked_positions"]] = batch["labels"]
        batch["hf_labels"] = labels.view_as(batch["input_ids"])
        batches.append(batch)
    return tokenizer.vocab_size, batches


def bench(preset: str, batches, vocab_size: int, max_seq_len: int, steps: int):
    import transformers

    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    cfg = preset_config(preset, vocab_size=vocab_size, max_positions=max_seq_len, pooler=False,
                        dropout=0.0, attention_dropout=0.0)  # no dropout: both sides do the same arithmetic
    ours = BertForMaskedLM(cfg).train()
    torch.manual_seed(0)
    rotary = BertForMaskedLM(dataclasses.replace(cfg, positions="rotary")).train()
    with tempfile.TemporaryDirectory() as tmp:
        save_hf_bert_mlm(ours, tmp)
        theirs = transformers.BertForMaskedLM.from_pretrained(tmp, attn_implementation="sdpa").train()

    def our_step(opt, batch, model=ours):
        logits = model(batch["input_ids"], batch["attention_mask"], masked_positions=batch["masked_positions"])
        loss = F.cross_entropy(logits, batch["labels"])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    def our_dense_step(opt, batch):  # ablation: our encoder, logits at every position as transformers does
        logits = ours(batch["input_ids"], batch["attention_mask"])  # (B, T, V)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), batch["hf_labels"].view(-1), ignore_index=-100)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    def their_step(opt, batch):
        out = theirs(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["hf_labels"])
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out.loss.item()

    our_opt = torch.optim.AdamW(ours.parameters(), lr=1e-4)
    rotary_opt = torch.optim.AdamW(rotary.parameters(), lr=1e-4)

    def rotary_step(opt, batch):
        return our_step(opt, batch, rotary)
    their_opt = torch.optim.AdamW(theirs.parameters(), lr=1e-4)
    first = batches[0]
    loss_ours, loss_theirs = our_step(our_opt, first), their_step(their_opt, first)  # warm-up; same loss
    rotary_step(rotary_opt, first)
    times = {"ours": [], "ours_dense": [], "theirs": [], "rotary": []}
    tokens = []
    for i in range(steps):
        batch = batches[1 + i % (len(batches) - 1)]
        tokens.append(int(batch["attention_mask"].sum()))
        sides = (("ours", our_step, our_opt), ("ours_dense", our_dense_step, our_opt),
                 ("theirs", their_step, their_opt), ("rotary", rotary_step, rotary_opt))
        for name, step, opt in sides[:: 1 if i % 2 else -1]:
            start = time.perf_counter()
            step(opt, batch)
            times[name].append(time.perf_counter() - start)
    mean_tokens = statistics.mean(tokens)
    tps = {name: mean_tokens / statistics.median(t) for name, t in times.items()}
    return tps["ours"], tps["ours_dense"], tps["theirs"], tps["rotary"], abs(loss_ours - loss_theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="bert-tiny,bert-mini")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-len", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    vocab_size, batches = make_batches(args.steps + 1, args.batch_size, args.max_seq_len, args.vocab_size)
    real = statistics.mean(float(b["attention_mask"].float().mean()) for b in batches)
    print(f"batch {args.batch_size} x up to {args.max_seq_len} tokens, {real:.0%} of positions real (rest padding), "
          f"vocab {vocab_size}, 15% masked, {args.threads} thread(s), median of {args.steps} steps per side\n")
    print("| preset | encoderlab tokens/s | encoderlab, logits at all positions | transformers tokens/s | ratio "
          "(ours / transformers) | first-step loss diff | encoderlab, rotary positions | rotary / learned |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for preset in args.presets.split(","):
        ours, dense, theirs, rotary, diff = bench(preset, batches, vocab_size, args.max_seq_len, args.steps)
        print(f"| {preset} | {ours:,.0f} | {dense:,.0f} | {theirs:,.0f} | {ours / theirs:.2f}x | {diff:.1e} | "
              f"{rotary:,.0f} | {rotary / ours:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
