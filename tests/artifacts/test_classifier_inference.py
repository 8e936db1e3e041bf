"""A saved classifier's inference runs its batches side by side on the cores, as TextEncoder.encode does, with the
same outputs as one batch after another (tiny encoder, real tweets)."""

import numpy as np
import pytest
import torch

from encoderlab.artifacts import classifier as classifier_module
from encoderlab.artifacts.classifier import TextClassifier, run_encoder
from encoderlab.artifacts.finetuned import HeadInfo, save_finetuned
from encoderlab.models.heads import EncoderWithHead, SequenceClassificationHead
from encoderlab.training.encoder_setup import load_encoder
from tasks.finetune_fixtures import tweet_rows, write_tiny_encoder


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, minilm_dir):
    tiny = write_tiny_encoder(tmp_path_factory.mktemp("tiny") / "enc", minilm_dir)
    torch.manual_seed(0)
    encoder, tokenizer, _ = load_encoder(str(tiny))
    model = EncoderWithHead(encoder, SequenceClassificationHead(32, 3, "mean", 0.1)).eval()
    run = tmp_path_factory.mktemp("run")
    save_finetuned(model, tokenizer, run / "final", HeadInfo(task="sequence-classification", max_length=32,
                                                             label_names=["a", "b", "c"], pooling="mean"))
    return TextClassifier.from_dir(run)


@pytest.fixture
def two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize(("n_texts", "batch_size"), [(40, 64), (300, 16)])  # one batch dealt; whole batches
def test_sharded_inference_equals_one_batch_after_another(classifier, two_threads, monkeypatch, n_texts, batch_size):
    if not torch.backends.openmp.is_available():
        pytest.skip("per-thread torch thread counts need an OpenMP build")
    texts = [text for text, _ in tweet_rows(n_texts)]
    ids = classifier.encode_ids(texts)
    one_after_another = run_encoder(classifier.model, ids, classifier.tokenizer, batch_size)  # no model: 1 shard
    seen = []
    real_run_parts = classifier_module.run_parts

    def watching(work, parts, shards, on_done):
        seen.append(shards)
        assert len(parts) >= 2 and sum(len(p) for p in parts) == n_texts
        return real_run_parts(work, parts, shards, on_done)

    monkeypatch.setattr(classifier_module, "run_parts", watching)
    probabilities = classifier.predict_proba(texts, batch_size=batch_size)
    assert seen == [2]
    np.testing.assert_allclose(probabilities, one_after_another.softmax(-1).numpy(), atol=1e-5)
    assert probabilities.shape == (n_texts, 3)
    assert torch.get_num_threads() == 2  # the caller's thread count is back


def test_hooks_keep_inference_in_one_thread(classifier, two_threads, monkeypatch):
    """int8 calibration watches layers with forward hooks, which expect one forward at a time."""
    seen = []
    real_run_parts = classifier_module.run_parts
    monkeypatch.setattr(classifier_module, "run_parts",
                        lambda work, parts, shards, on_done: seen.append(shards) or real_run_parts(work, parts, shards,
                                                                                                   on_done))
    handle = classifier.model.head.register_forward_hook(lambda *args: None)
    try:
        classifier.predict_proba([text for text, _ in tweet_rows(40)])
    finally:
        handle.remove()
    assert seen == [1]
