"""Every named preset builds, runs forward and backward; shapes follow layers x d_model, d_model/64 heads."""

import pytest
import torch

from encoderlab import ConfigError
from encoderlab.models.bert import BertForMaskedLM
from encoderlab.models.presets import PRESETS, list_presets, preset_config

torch.set_num_threads(1)


@pytest.mark.parametrize("name", list_presets())
def test_preset_shape_rules(name):
    cfg = preset_config(name, vocab_size=100)
    assert (cfg.n_layers, cfg.d_model) == PRESETS[name]
    assert cfg.n_heads == cfg.d_model // 64 and cfg.d_head == 64 and cfg.d_ff == 4 * cfg.d_model


@pytest.mark.parametrize("name", list_presets())
def test_preset_forward_backward(name):
    # Full depth for the small presets; one block of the real width for base and large (the per-block shapes
    # are what differ; 24 blocks of 1024 would only cost memory and minutes).
    depth = {"n_layers": 1} if PRESETS[name][1] >= 768 else {}
    cfg = preset_config(name, vocab_size=100, max_positions=16, pooler=False, **depth)
    model = BertForMaskedLM(cfg)
    ids = torch.randint(5, 100, (2, 16))
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0
    logits = model(ids, mask, masked_positions=torch.tensor([1, 3, 17]))
    assert logits.shape == (3, 100)
    logits.logsumexp(-1).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_full_size_parameter_counts_match_bert():
    # bert-base-uncased has 109.5 M parameters with its pooler and 30522 tokens (Devlin et al.).
    with torch.device("meta"):
        base = BertForMaskedLM(preset_config("bert-base", vocab_size=30522, pooler=True))
    assert abs(base.bert.num_parameters() - 109_482_240) == 0


def test_unknown_preset_suggests_the_closest_name():
    with pytest.raises(ConfigError, match=r"unknown model preset 'bert-tinny'; did you mean 'bert-tiny'\?"):
        preset_config("bert-tinny")
