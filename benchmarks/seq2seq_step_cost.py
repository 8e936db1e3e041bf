"""CPU seconds per training step of seq2seq models on real, collated CMUdict batches (the currency of the
equal-CPU comparisons in docs/seq2seq.md), for several shapes at once.

    OMP_NUM_THREADS=1 python benchmarks/seq2seq_step_cost.py --steps 20 \
        --model lstm --model 2+2x128 --model 4+1x128 --model 6+1x128 --model 4+1x192

Each model trains `--warmup` steps, then `--steps` more are timed with `time.process_time()` (forward,
backward, clipping and AdamW; the batches are the Trainer's length buckets: `--bucket-by`). One thread.
On a shared machine wall time is loose; process CPU time is what is reported. Shapes are written
`ENC+DECxWIDTH` (Transformer, 4 heads of 32 at 128, FFN 4x width, pre-LN, no dropout) or `lstm` (the shipped
configs/seq2seq-g2p.yaml model); `,field=value` suffixes set other
TransformerSeq2SeqConfig fields (`2+2x128,activation=relu,fused_attention=false`).
"""

from __future__ import annotations

import argparse
import json
import re
import time

import torch

from encoderlab.config import load_config
from encoderlab.models.recurrent import RecurrentConfig
from encoderlab.models.transformer_seq2seq import TransformerSeq2SeqConfig
from encoderlab.tasks.seq2seq import (
    PairDataset,
    Seq2SeqConfig,
    build_model,
    collate,
    make_loss_fn,
    prepare_data,
    with_vocab_sizes,
)
from encoderlab.training.optim import build_optimizer, clip_grad_norm
from encoderlab.training.precision import autocast
from encoderlab.training.sampler import EpochBatchSampler


def model_config(spec: str) -> RecurrentConfig | TransformerSeq2SeqConfig:
    if spec == "lstm":
        return load_config(Seq2SeqConfig, "configs/seq2seq-g2p.yaml", []).model
    shape, *overrides = spec.split(",")
    match = re.fullmatch(r"(\d+)\+(\d+)x(\d+)", shape)
    if match is None:
        raise SystemExit(f"--model {spec!r}: write lstm or ENC+DECxWIDTH[,field=value...], e.g. 4+1x128,d_ff=256")
    enc, dec, width = (int(g) for g in match.groups())
    fields = {"d_model": width, "n_heads": width // 32, "d_ff": 4 * width, "n_encoder_layers": enc,
              "n_decoder_layers": dec, "max_positions": 64, "dropout": 0.0, "attention_dropout": 0.0}
    for item in overrides:
        key, value = item.split("=", 1)
        fields[key] = {"true": True, "false": False}.get(value, int(value) if value.isdigit() else value)
    return TransformerSeq2SeqConfig(**fields)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="lstm or ENC+DECxWIDTH (repeatable)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--bucket-by", choices=("source", "target"), default="target")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="autocast, as the Trainer's")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(Seq2SeqConfig, "configs/seq2seq-g2p-transformer.yaml", [f"batch_size={args.batch_size}"])
    data = prepare_data(cfg)
    train = PairDataset(data.train, data.source_vocab, data.target_vocab)
    sampler = EpochBatchSampler(len(train), args.batch_size, 0, 0, lengths=train.bucket_keys(args.bucket_by))
    batches = [collate([train[i] for i in idx]) for _, idx in zip(range(args.warmup + args.steps), sampler,
                                                                  strict=False)]
    loss_fn = make_loss_fn(cfg)
    for spec in args.model:
        torch.manual_seed(0)
        model = build_model(with_vocab_sizes(model_config(spec), data)).train()
        optimizer = build_optimizer(model, cfg)
        for i, batch in enumerate(batches):
            if i == args.warmup:
                started = time.process_time()
            with autocast(args.precision, torch.device("cpu")):
                loss, _ = loss_fn(model, batch)
            loss.backward()
            clip_grad_norm(list(model.parameters()), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        per_step = (time.process_time() - started) / args.steps
        print(json.dumps({"model": spec, "parameters": sum(p.numel() for p in model.parameters()),
                          "batch_size": args.batch_size, "bucket_by": args.bucket_by, "precision": args.precision,
                          "cpu_s_per_step": round(per_step, 4)}), flush=True)


if __name__ == "__main__":
    main()
