import re

import numpy as np
import pytest

from encoderlab.cli import main

ort = pytest.importorskip("onnxruntime")


@pytest.mark.slow
def test_cli_export_onnx_matches_pytorch_on_new_texts(tmp_path, minilm):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--model", "minilm", "--format", "onnx", "--output", str(tmp_path / "onnx")])
    assert exit_info.value.code == 0
    assert (tmp_path / "onnx" / "tokenizer.json").is_file() and (tmp_path / "onnx" / "onnx_export.json").is_file()
    session = ort.InferenceSession(str(tmp_path / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    texts = ["Dynamic axes: a batch of three", "of different lengths, one of them quite a bit longer than others", "x"]
    batch = minilm.tokenizer(texts, max_length=256)
    hidden, embedding = session.run(None, {"input_ids": batch.input_ids.numpy(),
                                           "attention_mask": batch.attention_mask.numpy()})
    assert hidden.shape == (3, batch.input_ids.shape[1], 384)
    np.testing.assert_allclose(embedding, minilm.encode(texts), atol=1e-4)
    assert not minilm.training  # exporting does not leave the encoder in training mode


def test_unknown_format(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--format", "tflite", "--output", str(tmp_path)])
    assert exit_info.value.code == 2 and "use --format onnx" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--opset", "11"], "opset 11 is not supported: .* use --opset 14-"),  # was an UnsupportedOperatorError traceback
    (["--opset", "99"], "opset 99 is not supported"),  # was 'RuntimeError: Unsupported onnx_opset_version'
    (["--output-is-a-file"], "is a file; export writes a directory"),  # was a FileExistsError traceback
    (["--output-under-a-file"], "is a file, not a folder"),  # was a NotADirectoryError traceback
    (["--output-named-.onnx"], r"drop the .onnx, e.g. --output .*out-onnx"),  # became out.onnx/model.onnx
])
def test_bad_opset_or_output_is_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    output = tmp_path / "out"
    if args == ["--output-is-a-file"]:
        output.write_text("not a directory")
    elif args == ["--output-under-a-file"]:
        (tmp_path / "notes.txt").write_text("a file")
        output = tmp_path / "notes.txt" / "sub"
    elif args == ["--output-named-.onnx"]:
        output = tmp_path / "out.onnx"
    if args[0].startswith("--output"):
        args = []
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--model", "minilm", "--output", str(output), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and re.search(message, err[0]), err
    assert not output.is_dir()


def test_a_rotary_pre_ln_encoder_exports_with_parity(tmp_path, minilm_dir):
    """Architectures only encoderlab has (rotary positions, pre-LN) export too; parity is checked on export."""
    import torch

    from encoderlab import BertConfig, BertModel, TextEncoder
    from encoderlab.compression.export_onnx import export_onnx
    from encoderlab.tokenization import TextTokenizer

    torch.manual_seed(0)
    tokenizer = TextTokenizer.from_dir(minilm_dir)
    bert = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, d_model=32, n_layers=2, n_heads=2, d_ff=64,
                                positions="rotary", norm_position="pre"))
    encoder = TextEncoder(bert, tokenizer).eval()
    report = export_onnx(encoder, tmp_path / "model.onnx")
    assert report.max_abs_embedding <= report.tolerance and report.max_abs_hidden <= report.tolerance
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    texts = ["a short one", "and a longer text, so that the batch holds padding"]
    batch = tokenizer(texts, max_length=64)
    _, embedding = session.run(None, {"input_ids": batch.input_ids.numpy(),
                                      "attention_mask": batch.attention_mask.numpy()})
    np.testing.assert_allclose(embedding, encoder.encode(texts), atol=1e-4)
