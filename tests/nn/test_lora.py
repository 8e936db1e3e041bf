import pytest
import torch

from encoderlab import BertConfig, BertModel, ConfigError
from encoderlab.nn.lora import LoRALinear, apply_lora, merge_lora

TINY = dict(vocab_size=60, d_model=32, n_layers=2, n_heads=4, d_ff=64, max_positions=16, dropout=0.0,
            attention_dropout=0.0)


def test_starts_equal_trains_only_lora_and_merges_exactly():
    torch.manual_seed(0)
    model = BertModel(BertConfig(**TINY))
    ids = torch.randint(1, 60, (3, 9))
    before = model(ids).detach()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    names = apply_lora(model, targets=("query", "value"), rank=4, alpha=8)
    assert len(names) == 4 and all(isinstance(model.get_submodule(n), LoRALinear) for n in names)
    torch.testing.assert_close(model(ids), before)  # B = 0: the adapted model starts identical

    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    target = torch.randn(3, 9, 32)
    for _ in range(5):
        loss = (model(ids) - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    adapted = model(ids).detach()
    assert not torch.allclose(adapted, before)
    for name, value in model.state_dict().items():  # frozen weights did not move
        if "lora_" not in name:
            torch.testing.assert_close(value, original[name.replace(".base.", ".")])

    assert merge_lora(model) == 4
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    torch.testing.assert_close(model(ids), adapted, atol=1e-5, rtol=1e-5)
    assert set(model.state_dict()) == set(original)  # the merged model has the original layout


def test_unknown_target_lists_choices():
    model = BertModel(BertConfig(**TINY))
    with pytest.raises(ConfigError, match=r"match no linear layer; choose from \[.*'query'"):
        apply_lora(model, targets=("q_proj",))


def test_rank_must_be_positive():
    with pytest.raises(ConfigError, match="rank must be >= 1"):
        LoRALinear(torch.nn.Linear(4, 4), rank=0)
