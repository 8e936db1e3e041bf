"""Recommender models: sparse input paths equal the dense references, and the towers' cold-start behaviour."""

import pytest
import torch

from encoderlab.errors import ConfigError
from encoderlab.models.recommender import (
    AutoRec,
    MultVAE,
    RecommenderConfig,
    TwoTower,
    masked_squared_error,
    multinomial_loss,
    multinomial_loss_dense,
    to_dense,
)


def sparse_batch(n_rows=6, n_cols=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(n_rows, n_cols, generator=g) < 0.2
    mask[:, 0] = True  # no empty row
    rows, cols = mask.nonzero(as_tuple=True)
    values = torch.randint(1, 6, (len(rows),), generator=g).float()
    offsets = torch.searchsorted(rows, torch.arange(n_rows))
    return {"indices": cols, "offsets": offsets, "values": values}


@pytest.mark.parametrize("kind", ["mult-vae", "mult-dae"])
@pytest.mark.parametrize("hidden_dim", [16, 0])  # 0: no hidden layer, [I -> L -> I]
def test_mult_sparse_and_dense_paths_give_the_same_loss_and_gradients(kind, hidden_dim):
    torch.manual_seed(0)
    model = MultVAE(RecommenderConfig(kind=kind, n_items=40, hidden_dim=hidden_dim, latent_dim=4)).eval()
    batch = sparse_batch()
    sparse = multinomial_loss(model(**batch), **batch, beta=0.3)
    grads_sparse = torch.autograd.grad(sparse.sum(), list(model.parameters()))
    x = to_dense(**batch, n_cols=40)
    dense = multinomial_loss_dense(model.forward_dense(x), x, beta=0.3)
    grads_dense = torch.autograd.grad(dense.sum(), list(model.parameters()))
    torch.testing.assert_close(sparse, dense)
    for a, b in zip(grads_sparse, grads_dense, strict=True):
        torch.testing.assert_close(a, b)


def test_mult_vae_trains_on_sparse_rows_with_dropout():
    torch.manual_seed(0)
    model = MultVAE(RecommenderConfig(n_items=40, hidden_dim=16, latent_dim=4, dropout=0.5)).train()
    batch = sparse_batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = multinomial_loss(model(**batch), **batch, beta=0.0).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = first if first is not None else float(loss.detach())
    assert loss.item() < 0.8 * first
    assert model.encode(**batch).shape == (6, 4) and model.item_vectors().shape == (40, 16)


@pytest.mark.parametrize("kind", ["mult-vae", "mult-dae"])
def test_a_shallow_mult_model_is_one_layer_each_way(kind):
    """hidden_dim=0 is Liang et al.'s published Mult-DAE shape [I -> L -> I]: logits = W_out tanh(W_in x) + b
    (the VAE: W_out mu in eval)."""
    torch.manual_seed(0)
    model = MultVAE(RecommenderConfig(kind=kind, n_items=40, hidden_dim=0, latent_dim=4)).eval()
    assert sum(p.numel() for p in model.parameters()) == 40 * (8 if kind == "mult-vae" else 4) + \
        (8 if kind == "mult-vae" else 4) + 40 * 4 + 40
    batch = sparse_batch()
    x = torch.nn.functional.normalize(to_dense(**batch, n_cols=40), dim=1)
    code = model.input.dense(x)
    z = code[:, :4] if kind == "mult-vae" else torch.tanh(code)
    torch.testing.assert_close(model(**batch).logits, model.output(z))
    torch.testing.assert_close(model.encode(**batch), z)
    assert model.item_vectors().shape == (40, 4)
    with pytest.raises(ConfigError, match="or 0 for Mult"):
        RecommenderConfig(kind=kind, hidden_dim=-1)
    with pytest.raises(ConfigError, match="hidden_dim=0 must be at least 1"):
        RecommenderConfig(kind="autorec", hidden_dim=0)


def test_autorec_sparse_equals_dense_on_observed_entries():
    torch.manual_seed(0)
    model = AutoRec(RecommenderConfig(kind="autorec", n_items=40, n_users=40, hidden_dim=8))
    batch = sparse_batch()
    pred = model(**batch)
    x = to_dense(**batch, n_cols=40)
    torch.testing.assert_close(pred, model.forward_dense(x))
    sse = masked_squared_error(pred, batch["indices"], batch["offsets"], batch["values"])
    torch.testing.assert_close(sse, ((pred - x).square() * (x > 0)).sum(1))


def two_tower(n_items=10, n_users=5):
    cfg = RecommenderConfig(kind="two-tower", n_items=n_items, n_users=n_users, latent_dim=8, n_item_tokens=3,
                            n_user_tokens=2, title_dim=4, dropout=0.0, id_dropout=0.0)
    model = TwoTower(cfg)
    counts = torch.tensor([5, 3, 0, 2, 1, 0, 4, 4, 1, 2])  # items 2 and 5 are cold
    model.set_features(item_token_indptr=torch.arange(n_items + 1) // 4, item_token_indices=torch.tensor([0, 1, 2]),
                       user_token_indptr=torch.tensor([0, 1, 2, 2, 2, 2]), user_token_indices=torch.tensor([0, 1]),
                       item_titles=torch.randn(n_items, 4), item_counts=counts)
    return model


def test_two_tower_cold_items_are_encoded_from_features_alone():
    torch.manual_seed(0)
    model = two_tower().eval()
    before = model.encode_items(torch.tensor([2, 5, 1]))
    with torch.no_grad():
        model.item_id.weight[1:] += 10.0  # every known id row (row 0 is the unknown id)
    after = model.encode_items(torch.tensor([2, 5, 1]))
    torch.testing.assert_close(after[:2], before[:2])  # cold: their id rows are never used
    assert not torch.allclose(after[2], before[2])  # warm item 1 uses its id
    torch.testing.assert_close(after.norm(dim=-1), torch.ones(3))


def test_two_tower_in_batch_loss_masks_repeated_positives():
    torch.manual_seed(0)
    model = two_tower()
    users, items = torch.tensor([0, 1, 2, 3]), torch.tensor([1, 3, 1, 4])
    history, offsets = torch.tensor([0, 6, 7, 8, 9]), torch.tensor([0, 2, 3, 5])
    loss = model(users, items, history, offsets)
    assert loss.shape == (4,) and torch.isfinite(loss).all()
    loss.mean().backward()
    assert model.item_id.weight.grad is not None and model.history.weight.grad is not None
    # rows 0 and 2 share the positive item 1: neither is the other's negative, so with all other logits pushed
    # to -inf the loss would be 0; check the mask directly by comparing against an explicit computation.
    with torch.no_grad():
        u = model.encode_users(users, history, offsets)
        v = model.encode_items(items)
        logits = u @ v.T / model.cfg.temperature - model.item_log_popularity[items][None, :]
        logits[0, 2] = logits[2, 0] = -1e9
        expected = torch.nn.functional.cross_entropy(logits, torch.arange(4), reduction="none")
        torch.testing.assert_close(model(users, items, history, offsets), expected)


def test_config_errors_name_the_fix():
    with pytest.raises(ConfigError, match="model.kind='mlp'"):
        RecommenderConfig(kind="mlp")
    with pytest.raises(ConfigError, match="filled in"):
        MultVAE(RecommenderConfig())
    with pytest.raises(ConfigError, match="temperature"):
        RecommenderConfig(temperature=0)
