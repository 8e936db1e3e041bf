"""ONNX export of a Transformer seq2seq run trained on the bundled Spanish-English slice: encoder and decoder
through onnxruntime against PyTorch (max-abs), greedy decoding driven through onnxruntime, the CLI, and
the errors (a recurrent run, a bad --output)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from encoderlab.compression.export_onnx_seq2seq import (
    export_seq2seq_onnx,
    onnx_greedy,
    onnx_greedy_cached,
    onnx_step_logits,
)
from encoderlab.errors import InputDataError
from encoderlab.tasks.seq2seq import Seq2SeqPredictor, pad, seq2seq_command

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow  # a training run and four exports: about 50 s on one quiet core
torch.set_num_threads(1)
DATA = Path(__file__).resolve().parents[1] / "data"
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TINY = ["threads=1", "progress=off", f"data={DATA / 'bible-es-en-slice.tsv'}", "source_column=spanish",
        "target_column=english", "group_column=chapter", "source_tokens=subword", "target_tokens=subword",
        "subword_vocab_size=400", "split=0.8,0.1,0.1", "model.kind=transformer", "model.d_model=32", "model.n_heads=2",
        "model.d_ff=64", "model.n_encoder_layers=1", "model.n_decoder_layers=2", "model.max_positions=200",
        "model.share_embeddings=true", "batch_size=16", "lr=5e-3", "warmup_steps=5", "max_steps=40",
        "eval_every=0", "baselines=false", "beam_size=1", "max_test_examples=5", "max_output_length=30"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "es-en"
    seq2seq_command(None, [*TINY, f"out_dir={out}"])
    return out


def test_encoder_and_decoder_match_pytorch_and_greedy_decodes_the_same(run, tmp_path):
    import onnxruntime as ort

    report = export_seq2seq_onnx(run, tmp_path / "x")
    assert report.n_sources > 5  # held-out test verses of the run's own split
    assert report.max_abs_encoder < 1e-4 and report.max_abs_logits < 1e-4 and report.max_abs_step_logits < 1e-4
    assert report.greedy_agreement >= 0.9  # token-for-token; a near-tie could flip one output
    assert report.greedy_agreement_cached >= 0.9
    saved = json.loads((tmp_path / "x" / "onnx_export.json").read_text())
    assert saved["max_abs_logits"] == report.max_abs_logits and saved["special_ids"]["bos"] == 2
    # a user's loop over the written files, with the copied vocabulary, on inputs of another batch shape
    translator = Seq2SeqPredictor.from_dir(run)
    sources = ["Y dijo Dios: Sea la luz", "En el principio crió Dios los cielos y la tierra.", "Dios"]
    ids = pad(translator.source_ids(sources)).numpy()
    sessions = [ort.InferenceSession(str(tmp_path / "x" / name), providers=["CPUExecutionProvider"])
                for name in ("encoder.onnx", "decoder.onnx")]
    memory = sessions[0].run(None, {"source_ids": ids})[0]
    with torch.inference_mode():
        reference = translator.model.encode(torch.from_numpy(ids))[0].numpy()
    assert np.abs(memory - reference)[ids != 0].max() < 1e-4
    assert (memory[ids == 0] == 0).all()  # zeros at padding, as the model's encode
    onnx_out = onnx_greedy(*sessions, ids, translator.max_output_length)
    assert [translator.target_vocab.decode(o) for o in onnx_out] == translator.predict(sources)


def test_the_cached_decoder_step_computes_what_recomputing_the_prefix_computes(run, tmp_path):
    """decoder_step.onnx, fed one token per call with the keys and values it returned, gives the logits of
    decoder.onnx over the whole prefix, and greedy decoding through it the same outputs; a past from another
    position would not (the test can fail)."""
    import onnxruntime as ort

    export_seq2seq_onnx(run, tmp_path / "x")
    encoder, decoder, memory_graph, step = (
        ort.InferenceSession(str(tmp_path / "x" / name), providers=["CPUExecutionProvider"])
        for name in ("encoder.onnx", "decoder.onnx", "decoder_memory.onnx", "decoder_step.onnx"))
    translator = Seq2SeqPredictor.from_dir(run)
    sources = ["Y dijo Dios: Sea la luz", "En el principio crió Dios los cielos y la tierra.", "Dios"]
    ids = pad(translator.source_ids(sources)).numpy()
    memory = encoder.run(None, {"source_ids": ids})[0]
    target = np.array([[2, 40, 41, 42, 43, 44, 45, 46]] * 3, dtype=np.int64)  # BOS + 7 tokens
    full = decoder.run(None, {"target_ids": target, "encoder_output": memory, "source_ids": ids})[0]  # (3, 8, V)
    stepped = onnx_step_logits(memory_graph, step, memory, ids, target)
    assert stepped.shape == full.shape
    assert np.abs(stepped - full).max() < 1e-4
    other_past = target.copy()
    other_past[:, 1:-1] = np.arange(100, 106)  # the same last token after another prefix
    shuffled = onnx_step_logits(memory_graph, step, memory, ids, other_past)
    # the last position sees its past: far above the 1e-6 noise of equal computations
    assert np.abs(shuffled[:, -1] - full[:, -1]).max() > 5e-4  # 2.7e-3 measured
    cached = onnx_greedy_cached(encoder, memory_graph, step, ids, translator.max_output_length)
    assert cached == onnx_greedy(encoder, decoder, ids, translator.max_output_length)
    assert [translator.target_vocab.decode(o) for o in cached] == translator.predict(sources)


def test_cli_exports_a_seq2seq_run_and_refuses_a_recurrent_one(run, tmp_path, capsys):
    from encoderlab.cli import main

    def cli(*args: str) -> int:
        with pytest.raises(SystemExit) as info:
            main(list(args))
        return info.value.code

    assert cli("export", "--model", str(run), "--output", str(tmp_path / "cli")) == 0
    assert "encoder.onnx + decoder.onnx" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == [
        "decoder.onnx", "decoder_memory.onnx", "decoder_step.onnx", "encoder.onnx", "onnx_export.json", "vocab.json"]
    lstm = tmp_path / "lstm"
    seq2seq_command(CONFIGS / "seq2seq-g2p.yaml", ["threads=1", "progress=off", f"out_dir={lstm}", "max_steps=2",
                                                   "warmup_steps=1", "max_train_examples=50", "batch_size=16",
                                                   "eval_every=0", "baselines=false", "beam_size=1",
                                                   "max_test_examples=5", "model.d_embed=8", "model.d_hidden=8"])
    with pytest.raises(InputDataError, match="model.kind=transformer"):
        export_seq2seq_onnx(lstm, tmp_path / "no")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputDataError, match="is a file"):
        export_seq2seq_onnx(run, tmp_path / "file")
    assert not (tmp_path / "no").exists()
