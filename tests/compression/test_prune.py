"""Pruning: structured removal equals gating units to zero, importance finds dead units, magnitude masks hold
through recovery fine-tuning, pruned models save and reload through every ordinary path, bad input fails
clearly. Tiny encoders (d_model 32) on real tweets."""

import copy
import json

import pytest
import torch

from encoderlab.artifacts.classifier import TextClassifier
from encoderlab.artifacts.finetuned import load_finetuned, save_finetuned
from encoderlab.artifacts.text_encoder import TextEncoder
from encoderlab.cli import main
from encoderlab.compression.pruning import (
    choose_units,
    gated,
    magnitude_masks,
    prune_ffn,
    prune_heads,
    structured_importance,
    weight_sparsity,
)
from encoderlab.errors import CheckpointError, ConfigError, InputDataError
from encoderlab.interop.hf_bert import save_hf_bert
from encoderlab.models.bert import BertConfig, BertModel
from encoderlab.tasks.classify import ClassifyConfig, finetune_classifier, loss_fn, make_collate
from encoderlab.tasks.prune import (
    PruneConfig,
    data_splits,
    prune_classifier,
    recovery_data_config,
    teacher_data_config,
)
from encoderlab.tokenization import TextTokenizer
from models.packing_parity import assert_packed_equals_padded
from tasks.finetune_fixtures import one_thread, tweet_rows, write_csv  # noqa: F401 (autouse fixture)

TINY = dict(vocab_size=101, d_model=32, n_layers=3, n_heads=4, d_ff=64, max_positions=24, dropout=0.0,
            attention_dropout=0.0)


def _batch(B=4, T=12, lengths=(12, 5, 1, 9)):
    torch.manual_seed(1)
    ids = torch.randint(1, 101, (B, T))
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()
    return ids, mask


def _gates(width: int, removed: dict[int, list[int]], n_layers: int = 3) -> list[torch.Tensor]:
    """Per-layer 0/1 gates of `width` units: 0 where `removed` names the unit."""
    gates = [torch.ones(width) for _ in range(n_layers)]
    for layer, units in removed.items():
        gates[layer][units] = 0.0
    return gates


@pytest.mark.parametrize("unpad", [True, False])
@pytest.mark.parametrize("fused", [True, False])
def test_removing_heads_equals_zeroing_their_gates(unpad, fused):
    torch.manual_seed(0)
    model = BertModel(BertConfig(**TINY, unpad=unpad, fused_attention=fused)).eval()
    ids, mask = _batch()
    removed = {0: [1], 2: [0, 3]}
    with torch.no_grad(), gated(model, head_gates=_gates(4, removed)):
        expected = model(ids, mask)
    pruned = prune_heads(copy.deepcopy(model), removed)
    assert pruned.cfg.layer_heads == [3, 4, 2]
    assert pruned.blocks[2].attn.query.weight.shape == (16, 32) and pruned.blocks[2].attn.out.weight.shape == (32, 16)
    with torch.no_grad():
        torch.testing.assert_close(pruned(ids, mask), expected, atol=1e-6, rtol=0)
        assert not torch.allclose(model(ids, mask), expected, atol=1e-3)  # the removed heads did matter


@pytest.mark.parametrize("ffn_kind", ["mlp", "glu"])
def test_removing_neurons_equals_zeroing_them(ffn_kind):
    torch.manual_seed(0)
    model = BertModel(BertConfig(**TINY, ffn_kind=ffn_kind)).eval()
    ids, mask = _batch()
    removed = {0: list(range(0, 64, 3)), 1: [5], 2: list(range(40))}
    with torch.no_grad(), gated(model, neuron_gates=_gates(64, removed)):
        expected = model(ids, mask)
    pruned = prune_ffn(copy.deepcopy(model), removed)
    assert pruned.cfg.layer_d_ff == [42, 63, 24]
    with torch.no_grad():
        torch.testing.assert_close(pruned(ids, mask), expected, atol=1e-6, rtol=0)


def test_padded_equals_unpadded_on_a_pruned_model_forward_and_backward():
    torch.manual_seed(0)
    packed = BertModel(BertConfig(**TINY, unpad=True))
    prune_ffn(prune_heads(packed, {0: [0, 2], 1: [3]}), {1: [1, 2, 3], 2: list(range(30))})
    padded = BertModel(BertConfig(**{**TINY, "unpad": False, "layer_heads": [2, 3, 4], "layer_d_ff": [64, 61, 34]}))
    padded.load_state_dict(packed.state_dict())
    assert_packed_equals_padded(packed, padded, *_batch())


def test_magnitude_masks_global_and_per_layer():
    torch.manual_seed(0)
    model = BertModel(BertConfig(**TINY))
    per_layer = magnitude_masks(model, 0.3, scope="layer")
    for name, mask in per_layer.masks.items():
        assert abs((~mask).float().mean().item() - 0.3) < 1e-3, name  # exactly the fraction in every matrix
    original = {name: m.weight.detach().clone() for name, m in model.named_modules() if name in per_layer.masks}
    masks = magnitude_masks(model, 0.7)
    masks.apply(model)
    report = weight_sparsity(model)
    assert round(report["sparsity"] * report["prunable_weights"]) == round(0.7 * report["prunable_weights"])
    assert set(report["per_block"]) == {"0", "1", "2"} and len(report["per_layer"]) == 18
    removed = torch.cat([w[~masks.masks[n]].abs() for n, w in original.items()])
    survivors = torch.cat([w[masks.masks[n]].abs() for n, w in original.items()])
    assert survivors.min() >= removed.max()  # one global threshold: the smallest |w| went, wherever they were
    for name, module in model.named_modules():
        if name in masks.masks:  # survivors keep their exact values
            assert torch.equal(module.weight[masks.masks[name]], original[name][masks.masks[name]])
    assert model.embeddings.tokens.weight[1:].ne(0).all()  # embeddings are not pruned (row 0: padding)


# ============================================================================ a tiny fine-tuned classifier
@pytest.fixture(scope="module")
def teacher(tmp_path_factory, minilm_dir):
    """A 2-layer, 4-head, d_model 32 classifier fine-tuned for 6 steps on 120 real tweets."""
    root = tmp_path_factory.mktemp("prune")
    torch.manual_seed(0)
    tokenizer = TextTokenizer.from_dir(minilm_dir)
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_positions=64)
    save_hf_bert(BertModel(cfg), root / "enc")
    tokenizer.save(root / "enc")
    data = write_csv(root / "tweets.csv", tweet_rows(120))
    finetune_classifier(ClassifyConfig(data=str(data), init=str(root / "enc"), out_dir=str(root / "teacher"),
                                       max_length=32, batch_size=16, max_steps=6, lr=1e-3, progress="off",
                                       max_test_examples=10))
    return root / "teacher"


def _cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code


def _small(tmp_path, teacher, **overrides) -> PruneConfig:
    return PruneConfig(**{"model": str(teacher), "out_dir": str(tmp_path / "pruned"), "recovery_steps": 4,
                          "batch_size": 8, "lr": 1e-3, "speed_repeats": 0, "progress": "off",
                          "importance_examples": 32, **overrides})


def test_importance_ranks_a_dead_head_and_a_dead_neuron_last(teacher):
    model, tokenizer, meta = load_finetuned(teacher)
    attn, ffn = model.bert.blocks[1].attn, model.bert.blocks[0].ffn
    with torch.no_grad():  # head 2 of layer 1 outputs zeros; neuron 5 of layer 0 is always gelu(0) = 0
        attn.value.weight[2 * attn.d_head:3 * attn.d_head] = 0
        attn.value.bias[2 * attn.d_head:3 * attn.d_head] = 0
        ffn.up.weight[5] = 0
        ffn.up.bias[5] = 0
    texts = [t for t, _ in tweet_rows(64)]
    ids = tokenizer.encode_ids(texts, 32)
    collate = make_collate(tokenizer)
    batches = [collate([(x, i % 3) for i, x in enumerate(ids[s:s + 16])]) for s in range(0, 64, 16)]
    scores = structured_importance(model, batches, loss_fn)
    assert scores.batches == 4 and scores.heads[1][2] == 0 and scores.neurons[0][5] == 0
    assert all((s > 0).sum() == s.numel() - (i == 1) for i, s in enumerate(scores.heads))  # only the dead one
    assert choose_units(scores.heads, 1 / 8) == {1: [2]}
    assert choose_units(scores.neurons, 1 / 128) == {0: [5]}
    assert choose_units(scores.heads, 0.25, scope="layer") == {0: [int(scores.heads[0].argmin())], 1: [2]}
    assert all(len(v) < 4 for v in choose_units(scores.heads, 0.9).values())  # global keeps one head per layer


def test_pruned_classifier_saves_and_reloads_with_identical_outputs(tmp_path, teacher):
    model, tokenizer, meta = load_finetuned(teacher)
    prune_ffn(prune_heads(model.bert, {0: [1, 3], 1: [0]}), {0: list(range(20)), 1: [7]})
    save_finetuned(model, tokenizer, tmp_path / "m", meta)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["pruned_heads"] == {"0": [2, 3], "1": [3]} and config["encoderlab_intermediate_sizes"] == [44, 63]
    texts = [t for t, _ in tweet_rows(20)]
    before = TextClassifier(model, tokenizer, meta).predict_proba(texts)
    after = TextClassifier.from_pretrained(tmp_path / "m")
    assert after.model.bert.cfg.layer_heads == [2, 3] and after.model.bert.cfg.layer_d_ff == [44, 63]
    assert (after.predict_proba(texts) == before).all()
    encoder = TextEncoder.from_pretrained(tmp_path / "m")
    ids = tokenizer(texts, 32)
    with torch.no_grad():
        assert torch.equal(encoder(ids.input_ids, ids.attention_mask), model.bert(ids.input_ids, ids.attention_mask))


def test_magnitude_recovery_keeps_pruned_weights_at_zero(tmp_path, teacher):
    metrics = prune_classifier(_small(tmp_path, teacher, method="magnitude", sparsity=0.6, scope="layer"))
    original, _, _ = load_finetuned(teacher)
    masks = magnitude_masks(original.bert, 0.6, scope="layer")
    recovered, _, meta = load_finetuned(tmp_path / "pruned")
    assert meta.pruning["method"] == "magnitude" and metrics["step"] == 4
    linears = dict(recovered.bert.named_modules())
    originals = dict(original.bert.named_modules())
    for name, mask in masks.masks.items():
        weight = linears[name].weight
        assert (weight[~mask] == 0).all(), name  # every pruned weight is still exactly zero after 4 steps
        assert not torch.equal(weight[mask], originals[name].weight[mask]), name  # the survivors did train
    assert abs(metrics["sparsity"] - 0.6) < 1e-3 and metrics["zero_weight_fraction"] == metrics["sparsity"]
    assert metrics["parameters_after"] == metrics["parameters_before"]  # unstructured: same dense shapes
    pruned_count = metrics["nonzero_parameters_before"] - metrics["nonzero_parameters_after"]
    assert abs(pruned_count - 0.6 * 2 * (4 * 32 * 32 + 2 * 32 * 64)) < 10  # 60% of the 2 blocks' Linear weights
    for key in ("test_accuracy_before", "test_accuracy_pruned", "test_accuracy", "test_macro_f1"):
        assert 0.0 <= metrics[key] <= 1.0


def test_prune_command_end_to_end_and_reload_paths(tmp_path, teacher, capsys):
    out = tmp_path / "run"
    assert _cli("prune", f"model={teacher}", f"out_dir={out}", "method=heads+ffn", "sparsity=0.5", "recovery_steps=3",
                "batch_size=8", "importance_examples=32", "speed_repeats=1", "speed_batch_size=4", "progress=off") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["heads_after"] == 4 and metrics["heads_before"] == 8
    assert metrics["ffn_neurons_after"] == 64 and metrics["parameters_after"] < metrics["parameters_before"]
    assert 0.45 < metrics["sparsity"] < 0.55 and metrics["step"] == 3
    assert {"test_accuracy_before", "test_accuracy_pruned", "test_accuracy"} <= set(metrics)
    assert all(s["sentences_per_s_after"] > 0 for s in metrics["speed"].values()) and len(metrics["speed"]) == 2
    plan = json.loads((out / "pruning.json").read_text())
    assert sum(map(len, plan["heads_removed"].values())) == 4
    assert TextClassifier.from_pretrained(out).model.bert.cfg.layer_heads == metrics["layer_heads"]
    (tmp_path / "in.txt").write_text("what a great day\nthis is awful\n")
    assert _cli("predict", "--model", str(out), "--input", str(tmp_path / "in.txt"),
                "--output", str(tmp_path / "p.jsonl")) == 0
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 2
    assert _cli("encode", "--model", str(out / "final"), "--input", str(tmp_path / "in.txt"),
                "--output", str(tmp_path / "v.npy")) == 0
    data = json.loads((out / "final" / "head.json").read_text())["data"]
    assert _cli("evaluate", "--model", str(out), "--data", data) == 0
    assert "accuracy" in capsys.readouterr().out
    # a pruned run prunes further: its own data settings travel in head.json
    again = prune_classifier(_small(tmp_path, out, method="heads", sparsity=0.25, recovery_steps=0,
                                    out_dir=str(tmp_path / "again")))
    assert (again["heads_before"], again["heads_after"]) == (4, 3)  # sparsity is a fraction of what is left
    assert again["test_examples"] == metrics["test_examples"]


@pytest.mark.parametrize("overrides,message", [
    (dict(sparsity=1.0), "sparsity=1.0 must be in \\[0, 1\\)"),
    (dict(sparsity=-0.1), "sparsity=-0.1 must be in"),
    (dict(method="random"), "method='random' is unknown"),
    (dict(model=""), "model is empty"),
])
def test_bad_config_says_what_to_fix(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        PruneConfig(**{"model": "runs/x", "out_dir": str(tmp_path), **overrides})


def test_removing_every_head_of_a_layer_is_refused():
    model = BertModel(BertConfig(**TINY))
    with pytest.raises(ConfigError, match="removing all 4 heads of layer 1 .* keep at least one"):
        prune_heads(model, {1: [0, 1, 2, 3]})
    with pytest.raises(ConfigError, match="layer 0 has heads 0..3"):
        prune_heads(model, {0: [4]})
    with pytest.raises(ConfigError, match="removing all 64 neurons of layer 0"):
        prune_ffn(model, {0: range(64)})
    assert model.cfg.layer_heads is None  # nothing was changed by the refused calls


def test_a_model_that_is_not_a_fine_tuned_classifier_is_refused(tmp_path, teacher, capsys):
    encoder_dir = teacher.parent / "enc"
    with pytest.raises(CheckpointError, match="holds no head.json; it is not a fine-tuned model"):
        prune_classifier(_small(tmp_path, encoder_dir))
    assert _cli("prune", f"model={encoder_dir}", f"out_dir={tmp_path / 'x'}") == 2
    err = capsys.readouterr().err
    assert "error:" in err and str(encoder_dir) in err and "encoderlab finetune" in err


def test_resume_continues_with_the_same_plan(tmp_path, teacher):
    out = tmp_path / "run"
    args = (f"model={teacher}", f"out_dir={out}", "method=ffn", "sparsity=0.5", "recovery_steps=2", "save_every=2",
            "batch_size=8", "importance_examples=32", "speed_repeats=0", "progress=off")
    assert _cli("prune", *args) == 0
    plan = (out / "pruning.json").read_text()
    assert _cli("prune", "--resume", str(out), "max_steps=4") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["step"] == 4 and (out / "pruning.json").read_text() == plan
    assert metrics["ffn_neurons_after"] == 64 and metrics["test_accuracy_before"] == json.loads(plan)["test_before"][
        "accuracy"]


def test_recovery_data_with_some_of_the_classes_keeps_the_classifiers_label_ids(tmp_path, teacher):
    """A user's file with only 'neutral' and 'positive' numbers them 0 and 1 by itself; the classifier's ids are
    1 and 2. Labels are mapped by name, so recovery trains and scores against the right classes, and the
    file's own column names are given with text_column= / label_column=."""
    rows = [r for r in tweet_rows(300) if r[1] != "negative"][:90]
    data = write_csv(tmp_path / "mine.csv", rows, header=("tweet", "sentiment"))
    gold = dict(rows)
    meta = load_finetuned(teacher)[2]
    assert meta.label_names == ["negative", "neutral", "positive"]
    cfg = _small(tmp_path, teacher, data=str(data), text_column="tweet", label_column="sentiment", recovery_steps=1)
    data_cfg = recovery_data_config(cfg, teacher_data_config(teacher / "final", meta))
    for part in data_splits(data_cfg, meta.label_names, "tweets.csv"):
        assert len(part) and all(part.label_names[y] == gold[t] for t, y in zip(part.texts, part.labels, strict=True))
    metrics = prune_classifier(cfg)
    test = data_splits(data_cfg, meta.label_names, "tweets.csv")[2]
    predicted = TextClassifier.from_pretrained(teacher).predict(test.texts)
    expected = sum(p == gold[t] for p, t in zip(predicted, test.texts, strict=True)) / len(test)
    assert metrics["test_accuracy_before"] == pytest.approx(expected)

    sarcastic = [(f"oh great, another monday number {i}", "sarcastic") for i in range(6)]
    write_csv(tmp_path / "new.csv", [*rows[:30], *sarcastic], header=("tweet", "sentiment"))
    with pytest.raises(InputDataError, match="label 'sarcastic' never occurs in the training data"):
        prune_classifier(_small(tmp_path, teacher, data=str(tmp_path / "new.csv"), text_column="tweet",
                                label_column="sentiment", out_dir=str(tmp_path / "x")))
    with pytest.raises(ConfigError, match="text_column= / label_column= name the columns of a data= file"):
        prune_classifier(_small(tmp_path, teacher, text_column="tweet", out_dir=str(tmp_path / "y")))
