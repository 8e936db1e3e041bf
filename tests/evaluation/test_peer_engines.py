"""The peers `encoderlab bench` measures us against do the same job as we do: same texts, same cut, same pooling."""

import numpy as np
import pytest

from encoderlab.evaluation.peer_engines import build_peer_engines, by_length, mean_pool_normalise
from encoderlab.evaluation.speed import measure, real_text_workloads


def test_length_sorted_batches_come_back_in_input_order(minilm):
    seen: list[list[int]] = []

    def run_batch(ids, mask):  # hidden state = the token id, so each row's mean pool is its mean id
        seen.append(mask.sum(1).tolist())
        return np.repeat(ids[..., None].astype(np.float32), 2, axis=2)

    texts = ["a", "a much longer text than the others here", "b c", "d e f g h", "x"]
    encode = by_length(minilm.tokenizer, 6, run_batch, batch_size=2)
    out = encode(texts)
    ours = minilm.tokenizer.encode_ids(texts, 6)  # our own cut: [CLS] ... [SEP], at most 6
    assert [n for batch in seen for n in batch] == sorted((len(ids) for ids in ours), reverse=True)
    expected = np.array([[np.mean(ids)] * 2 for ids in ours], dtype=np.float32)
    np.testing.assert_allclose(out, expected / np.linalg.norm(expected, axis=1, keepdims=True), rtol=1e-6)


def test_mean_pool_skips_padding():
    hidden = np.array([[[1.0, 0.0], [3.0, 0.0], [100.0, 100.0]]])
    np.testing.assert_allclose(mean_pool_normalise(hidden, np.array([[1, 1, 0]])), [[1.0, 0.0]])


@pytest.mark.slow
@pytest.mark.parametrize("peer", ["openvino", "ctranslate2"])
def test_each_installed_peer_agrees_with_encoderlab_fp32(minilm, peer):
    pytest.importorskip(peer)
    if peer == "openvino":
        pytest.importorskip("nncf")
    texts = real_text_workloads(minilm, batch_size=8)["variable 8x16-128"]
    notes: list[str] = []
    engines = build_peer_engines(minilm, [peer], threads=1, max_length=512, batch_size=4, calibration=texts,
                                 notes=notes)
    wanted = {"openvino": {"fp32", "bf16", "int8"}, "ctranslate2": {"fp32", "int8"}}[peer]
    assert {name.split()[1] for name in engines} >= wanted - {"bf16"}  # bf16 only where the CPU build has it
    results = {r.engine: r for r in measure({"encoderlab fp32": lambda t: minilm.encode(t), **engines},
                                            {"variable": texts}, repeats=1, warmup=0, idle_s=0)}
    assert results[f"{peer} fp32"].min_cosine > 0.99999  # fp32 is asked for explicitly (OpenVINO defaults to bf16)
    assert results[f"{peer} int8"].min_cosine > 0.97
    assert all(engine.kernels for engine in engines.values())
