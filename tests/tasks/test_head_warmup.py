"""head_warmup_epochs (LP-FT): the head trains alone on the frozen encoder, then the fine-tune starts from it."""

import json

import pytest
import torch
from safetensors.torch import load_file

from encoderlab.artifacts.classifier import TextClassifier
from encoderlab.cli import main
from encoderlab.errors import ConfigError
from encoderlab.tasks.classify import ClassifyConfig, finetune_classifier
from encoderlab.tasks.head_warmup import needs_head_warmup
from encoderlab.training.seeding import seed_everything

from .finetune_fixtures import one_thread, write_tiny_encoder  # noqa: F401 (autouse fixture)

# bbc-news articles are long: with window=32 each is many windows
SMALL = dict(data="bbc-news", max_train_examples=24, max_eval_examples=12, max_test_examples=8, max_length=32,
             batch_size=8, epochs=1, progress="off")
READINGS = {"truncate": {}, "chunk": dict(long_text="chunk", window=32, stride=24, window_pooling="attention")}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, minilm_dir):
    return write_tiny_encoder(tmp_path_factory.mktemp("tiny") / "enc", minilm_dir)


def _head(run) -> dict[str, torch.Tensor]:
    """The saved classifier's head (and learned window attention) weights."""
    classifier = TextClassifier.from_dir(run)
    return {**{f"head.{k}": v for k, v in classifier.model.head.state_dict().items()},
            **{f"window_pool.{k}": v for k, v in classifier.window_pool.state_dict().items()}}


@pytest.mark.slow
@pytest.mark.parametrize("reading", ["truncate", "chunk"])
def test_the_fine_tune_starts_from_the_warmed_up_head(tmp_path, tiny, reading):
    # lr=1e-9 for the fine-tune: it barely moves anything, so its final head is the head it started from
    common = dict(init=str(tiny), mode="full", lr=1e-9, weight_decay=0.0, **SMALL, **READINGS[reading])
    warm = finetune_classifier(ClassifyConfig(out_dir=str(tmp_path / "warm"), head_warmup_epochs=4,
                                              head_warmup_lr=3e-2, **common))
    cold = finetune_classifier(ClassifyConfig(out_dir=str(tmp_path / "cold"), **common))
    assert warm["head_warmup_steps"] == 4 * 3 and "head_warmup_steps" not in cold  # 24 texts, batch 8
    assert 0.0 <= warm["head_warmup_eval_accuracy"] <= 1.0
    log = [json.loads(line) for line in (tmp_path / "warm" / "head_warmup" / "log.jsonl").read_text().splitlines()]
    assert any(record.get("step") == 12 for record in log)
    warmed = load_file(str(tmp_path / "warm" / "head_warmup" / "final" / "model.safetensors"))
    if reading == "truncate":  # the head alone trained: its keys are the head's own
        warmed = {f"head.{k}": v for k, v in warmed.items()}
    warm_head, cold_head = _head(tmp_path / "warm"), _head(tmp_path / "cold")
    for name, value in warmed.items():  # the fine-tune's final head is the warmed-up one ...
        torch.testing.assert_close(warm_head[name], value, atol=1e-6, rtol=0)
    # ... which the warm-up really trained away from the random head the cold run starts from and keeps
    assert (warm_head["head.out.weight"] - cold_head["head.out.weight"]).abs().max() > 1e-2
    if reading == "chunk":  # and the window attention learned too
        assert (warm_head["window_pool.score.weight"] - cold_head["window_pool.score.weight"]).abs().max() > 1e-3
    # the warm-up leaves the encoder alone (the fine-tune at lr=1e-9 moves it by ~1e-9)
    before = load_file(str(tiny / "model.safetensors"))
    after = load_file(str(tmp_path / "warm" / "final" / "model.safetensors"))
    assert all(torch.allclose(before[k], after[k], atol=1e-6) for k in before)


@pytest.mark.slow
def test_lp_ft_through_windows_is_reproducible_and_trains_everything(tmp_path, tiny):
    cfg = dict(init=str(tiny), mode="full", lr=1e-3, head_warmup_epochs=2, seed=3, **SMALL, **READINGS["chunk"])
    seed_everything(3)  # as `encoderlab finetune` does before it builds the head (training/entrypoint.py)
    first = finetune_classifier(ClassifyConfig(out_dir=str(tmp_path / "a"), **cfg))
    seed_everything(3)
    second = finetune_classifier(ClassifyConfig(out_dir=str(tmp_path / "b"), **cfg))
    assert first["head_warmup_eval_accuracy"] == second["head_warmup_eval_accuracy"]
    for name in ("model.safetensors", "window_pool.safetensors"):  # same config and seed: the same bits
        a, b = load_file(str(tmp_path / "a" / "final" / name)), load_file(str(tmp_path / "b" / "final" / name))
        assert all(torch.equal(a[k], b[k]) for k in a)
    before = load_file(str(tiny / "model.safetensors"))
    after = load_file(str(tmp_path / "a" / "final" / "model.safetensors"))
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the encoder fine-tuned after the warm-up
    # a resumed run whose checkpoints hold the trained head does not warm up again
    resumed = ClassifyConfig(out_dir=str(tmp_path / "a"), resume=True, **cfg)
    assert not needs_head_warmup(resumed) and needs_head_warmup(ClassifyConfig(out_dir=str(tmp_path / "c"), **cfg))


@pytest.mark.parametrize(("overrides", "message"), [
    ({"mode": "frozen", "head_warmup_epochs": 5}, "mode=frozen only trains the head; drop head_warmup_epochs"),
    ({"head_warmup_epochs": -1}, "head_warmup_epochs=-1 must be >= 0"),
    ({"head_warmup_epochs": 2, "head_warmup_lr": 0.0}, "head_warmup_lr=0.0 must be positive"),
])
def test_bad_head_warmup_settings_are_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        ClassifyConfig(data="bbc-news", out_dir="unused", **overrides)


def test_the_cli_takes_the_warm_up_settings(tmp_path, tiny, capsys):
    with pytest.raises(SystemExit) as code:
        main(["finetune", f"init={tiny}", "mode=frozen", "head_warmup_epochs=3", f"out_dir={tmp_path / 'r'}",
              "data=bbc-news"])
    assert code.value.code == 2 and "drop head_warmup_epochs" in capsys.readouterr().err
