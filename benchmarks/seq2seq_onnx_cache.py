"""Greedy decoding of a Transformer seq2seq run through ONNX Runtime, with and without the key/value cache.

    python benchmarks/seq2seq_onnx_cache.py runs/seq2seq-es-en-warm --output /tmp/es-en-onnx --sources 16

Exports the run (`encoderlab export`'s checks included), then decodes the run's first N held-out test
sources three ways, one thread each: decoder.onnx (the whole prefix recomputed every step), decoder_step.onnx
(one position per call, past keys/values carried) and PyTorch's own cached greedy decoding. Prints the CPU
seconds of each (process time: on a shared machine wall time is loose) and whether the outputs agree.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from encoderlab.compression.export_onnx_seq2seq import (
    export_seq2seq_onnx,
    held_out_sources,
    onnx_greedy,
    onnx_greedy_cached,
)
from encoderlab.tasks.seq2seq import Seq2SeqPredictor, pad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a Transformer seq2seq run (its out_dir)")
    parser.add_argument("--output", required=True, help="where the ONNX files are written (must not exist)")
    parser.add_argument("--sources", type=int, default=16, help="held-out test sources decoded")
    args = parser.parse_args()
    import onnxruntime as ort

    torch.set_num_threads(1)
    export_seq2seq_onnx(args.run, args.output)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = {name: ort.InferenceSession(f"{args.output}/{name}.onnx", options, providers=["CPUExecutionProvider"])
               for name in ("encoder", "decoder", "decoder_memory", "decoder_step")}
    predictor = Seq2SeqPredictor.from_dir(args.run)
    ids = pad(predictor.source_ids(held_out_sources(predictor.directory, args.sources))).numpy()
    length = predictor.max_output_length

    def timed(decode):
        started = time.process_time()
        outputs = decode()
        return outputs, time.process_time() - started

    uncached, uncached_s = timed(lambda: onnx_greedy(session["encoder"], session["decoder"], ids, length))
    cached, cached_s = timed(lambda: onnx_greedy_cached(session["encoder"], session["decoder_memory"],
                                                        session["decoder_step"], ids, length))
    with torch.inference_mode():
        own, own_s = timed(lambda: predictor.model.greedy(torch.from_numpy(ids), length))
    print(json.dumps({"sources": len(ids), "mean_output_tokens": float(np.mean([len(o) for o in cached])),
                      "uncached_onnx_cpu_s": round(uncached_s, 3), "cached_onnx_cpu_s": round(cached_s, 3),
                      "pytorch_cached_cpu_s": round(own_s, 3), "cached_equals_uncached": cached == uncached,
                      "cached_equals_pytorch": cached == own}))


if __name__ == "__main__":
    main()
