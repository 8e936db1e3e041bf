"""BertForMaskedLM: the sparse head equals the dense head at the masked positions, with padding, forward
and backward; the decoder is tied to the token embeddings."""

import torch

from encoderlab.models.bert import BertForMaskedLM
from encoderlab.models.presets import preset_config


def _model():
    torch.manual_seed(0)
    return BertForMaskedLM(preset_config("bert-tiny", vocab_size=300, max_positions=32, pooler=False,
                                         dropout=0.0, attention_dropout=0.0))


def test_sparse_head_equals_dense_head_at_masked_positions():
    model = _model()
    ids = torch.randint(5, 300, (3, 20))
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0
    mask[2, 4:] = 0
    positions = torch.tensor([0, 7, 21, 30, 41, 42])
    dense = model(ids, mask)  # (B, T, V)
    sparse = model(ids, mask, masked_positions=positions)  # (N, V)
    assert torch.allclose(sparse, dense.view(60, -1)[positions], atol=1e-5)

    dense.view(60, -1)[positions].sum().backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model(ids, mask, masked_positions=positions).sum().backward()
    for grad, want in zip((p.grad for p in model.parameters()), expected, strict=True):
        assert torch.allclose(grad, want, atol=1e-5)


def test_decoder_is_tied_to_the_token_embeddings():
    model = _model()
    names = [n for n, _ in model.named_parameters()]
    assert not any("decoder" in n for n in names)  # the head owns only dense, norm and bias
    with torch.no_grad():
        model.bert.embeddings.tokens.weight[7].add_(1.0)
    ids = torch.randint(5, 300, (1, 8))
    logits = model(ids, masked_positions=torch.tensor([3]))
    hidden = model.head.norm(model.head.act(model.head.dense(model.bert(ids)[0, 3])))
    assert torch.allclose(logits[0, 7], hidden @ model.bert.embeddings.tokens.weight[7] + model.head.bias[7], atol=1e-5)
