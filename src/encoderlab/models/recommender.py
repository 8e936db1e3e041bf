"""Recommender encoders over sparse interaction rows: Mult-DAE / Mult-VAE, AutoRec and a two-tower encoder.

- Mult-VAE and Mult-DAE (Liang, Krishnan, Hoffman & Jebara 2018, "Variational Autoencoders for Collaborative
  Filtering"): a user's row of clicked items -> L2-normalised, input dropout -> [I -> 600 -> 200] tanh encoder
  (the VAE outputs mu and log sigma^2) -> [200 -> 600 -> I] tanh decoder -> logits over the catalogue
  (`hidden_dim=0`: [I -> 200 -> I], the Mult-DAE of the paper's published code). Loss:
  the multinomial log-likelihood -sum_j x_j log softmax(logits)_j, plus beta * KL for the VAE with beta annealed
  from 0 to `anneal_cap` (the caller passes the current beta). The input layer is a `SparseLinear`
  (EmbeddingBag): a batch costs its non-zeros, never a dense B x I input.
- AutoRec (Sedhain, Menon, Sanner & Xie 2015): I-AutoRec encodes an item's vector of ratings by all users
  (U-AutoRec a user's ratings of all items): h = sigmoid(V r + mu), r_hat = W h + b; the squared error is
  taken over observed ratings only, plus (reg / 2)(||W||^2 + ||V||^2).
- Two-tower (dual encoder; Covington et al. 2016, Yi et al. 2019): a user tower over the bag of the user's
  history items and user feature tokens, an item tower over the item's id (unknown for cold items), feature
  tokens (genres, year) and title vector (our text encoder's, or a token bag); both L2-normalised; trained
  with in-batch negatives (sampled softmax) and the log-Q popularity correction. A cold item is encoded from
  its features alone (its id is never seen in training, and id dropout trains that path).

Shapes: B users (or items for I-AutoRec) in a batch, I items, U users, H hidden, L latent, D tower dim.
Sparse rows come as bags: `indices` (nnz,), `offsets` (B,), `values` (nnz,) (see nn/sparse_linear.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..nn.sparse_linear import SparseLinear, gather_bags, row_ids, to_dense
from .vae import Posterior

KINDS = ("mult-vae", "mult-dae", "autorec", "two-tower")


@dataclass
class RecommenderConfig:
    kind: Literal["mult-vae", "mult-dae", "autorec", "two-tower"] = "mult-vae"
    """The model family (see the module docstring)."""
    n_items: int = 0
    """Catalogue size; filled in from the data."""
    n_users: int = 0
    """Number of users; filled in from the data (AutoRec: the width of an item's rating vector)."""
    hidden_dim: int = 600
    """Mult-*: the hidden layer of encoder and decoder (Liang et al.: 600); 0 = none, [I -> L -> I] (the Mult-DAE
    of Liang et al.'s published code is [I -> 200 -> I]). AutoRec: the code (paper: 500)."""
    latent_dim: int = 200
    """Mult-*: the user code (Liang et al.: 200). Two-tower: the dimension D of both towers' vectors."""
    dropout: float = 0.5
    """Mult-*: dropout on the normalised input (the denoising); two-tower: dropout inside the towers."""
    autorec_side: Literal["item", "user"] = "item"
    """AutoRec: encode items' rating vectors over users (I-AutoRec, the paper's better one) or users' over items."""
    n_user_tokens: int = 0
    """Two-tower: size of the user feature-token vocabulary (filled in from the data; 0 = no user features)."""
    n_item_tokens: int = 0
    """Two-tower: size of the item feature-token vocabulary (genres, year, title words; filled in)."""
    title_dim: int = 0
    """Two-tower: width of the precomputed item title vectors (384 for MiniLM; 0 = none; filled in)."""
    id_dropout: float = 0.3
    """Two-tower: probability that an item's id embedding is replaced by the unknown id in training, so the
    tower learns to encode an item from its features alone (cold start)."""
    temperature: float = 0.05
    """Two-tower: softmax temperature of the cosine scores."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"model.kind={self.kind!r}; choose one of {', '.join(KINDS)}")
        for name in ("hidden_dim", "latent_dim"):
            if getattr(self, name) < (0 if name == "hidden_dim" and self.kind.startswith("mult-") else 1):
                raise ConfigError(f"model.{name}={getattr(self, name)} must be at least 1"
                                  + (" (or 0 for Mult-*: no hidden layer)" if name == "hidden_dim" else ""))
        for name in ("n_items", "n_users", "n_user_tokens", "n_item_tokens", "title_dim"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model.{name}={getattr(self, name)} must be >= 0 (it is filled in from the data)")
        if not 0 <= self.dropout < 1 or not 0 <= self.id_dropout < 1:
            raise ConfigError(f"model.dropout={self.dropout} and model.id_dropout={self.id_dropout} must be in [0, 1)")
        if self.temperature <= 0:
            raise ConfigError(f"model.temperature={self.temperature} must be positive, e.g. 0.05")

    def check_sizes(self) -> None:
        """The sizes the task fills in from the data must be there before a model is built."""
        if self.n_items < 1 or (self.kind in ("autorec", "two-tower") and self.n_users < 1):
            raise ConfigError(f"model.n_items={self.n_items}, model.n_users={self.n_users}: the data sizes are not "
                              "filled in; the recommend task sets them from the data")


def drop_values(values: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout of the stored values of a sparse batch (the same as dropout on the dense rows, whose
    zeros stay zero)."""
    if not training or p == 0:
        return values
    keep = torch.rand_like(values) >= p
    return values * keep / (1 - p)


def normalized_values(values: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Each row's values divided by the row's L2 norm (Liang et al. normalise the input row)."""
    rows = row_ids(offsets, len(values))
    norms = torch.zeros(len(offsets), dtype=values.dtype, device=values.device).index_add_(0, rows, values.square())
    return values / norms.sqrt().clamp_min(1e-12)[rows]


# ----------------------------------------------------------------------------------------------- Mult-DAE / VAE
@dataclass
class MultOutput:
    logits: torch.Tensor
    """(B, I) scores over the catalogue."""
    posterior: Posterior | None
    """The VAE's q(z|x) (None for the DAE)."""


class MultVAE(nn.Module):
    """Mult-VAE (`variational=True`) or Mult-DAE over sparse user rows."""

    def __init__(self, cfg: RecommenderConfig) -> None:
        super().__init__()
        cfg.check_sizes()
        self.cfg = cfg
        self.variational = cfg.kind == "mult-vae"
        self.shallow = cfg.hidden_dim == 0  # [I -> L -> I]: the input layer gives the code directly
        code = 2 * cfg.latent_dim if self.variational else cfg.latent_dim  # the VAE's mu and log sigma^2
        width = code if self.shallow else cfg.hidden_dim
        self.input = SparseLinear(cfg.n_items, width)  # the I -> H layer (I -> L if shallow), over non-zeros only
        if not self.shallow:
            self.to_code = nn.Linear(cfg.hidden_dim, code)
            self.decoder_hidden = nn.Linear(cfg.latent_dim, cfg.hidden_dim)
        self.output = nn.Linear(cfg.latent_dim if self.shallow else cfg.hidden_dim, cfg.n_items)  # rows: item vectors

    def _pre_code(self, h: torch.Tensor) -> torch.Tensor:
        """(B, H) input-layer output -> (B, L) pre-activation code, (B, 2L) mu and log sigma^2 for the VAE."""
        return h if self.shallow else self.to_code(torch.tanh(h))

    def _code(self, h: torch.Tensor) -> tuple[torch.Tensor, Posterior | None]:
        """(B, H) input-layer output -> the code z (B, L) and, for the VAE, q(z|x)."""
        if not self.variational:
            return torch.tanh(self._pre_code(h)), None
        mu, logvar = self._pre_code(h).chunk(2, dim=-1)  # (B, L) each
        q = Posterior(mu, logvar)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        return z, q

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, I) logits."""
        return self.output(z if self.shallow else torch.tanh(self.decoder_hidden(z)))

    def forward(self, indices: torch.Tensor, offsets: torch.Tensor, values: torch.Tensor) -> MultOutput:
        x = drop_values(normalized_values(values, offsets), self.cfg.dropout, self.training)
        z, q = self._code(self.input(indices, offsets, x))
        return MultOutput(self.decode(z), q)

    def forward_dense(self, x: torch.Tensor) -> MultOutput:
        """Reference path on dense (B, I) rows."""
        x = F.dropout(F.normalize(x, dim=1), self.cfg.dropout, self.training)
        z, q = self._code(self.input.dense(x))
        return MultOutput(self.decode(z), q)

    def encode(self, indices: torch.Tensor, offsets: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """(B, L) user codes: the posterior mean (VAE) or the code (DAE), without dropout."""
        code = self._pre_code(self.input(indices, offsets, normalized_values(values, offsets)))
        return code.chunk(2, dim=-1)[0] if self.variational else torch.tanh(code)

    def item_vectors(self) -> torch.Tensor:
        """(I, H) output embeddings (I, L if shallow): logits = tanh(decoder_hidden(z)) @ item_vectors.T + bias."""
        return self.output.weight


def multinomial_loss(out: MultOutput, indices: torch.Tensor, offsets: torch.Tensor, values: torch.Tensor,
                     beta: float) -> torch.Tensor:
    """(B,) per user: -sum_j x_j log softmax(logits)_j (+ beta * KL), over the row's non-zeros only."""
    log_probs = F.log_softmax(out.logits, dim=-1)  # (B, I)
    rows = row_ids(offsets, len(indices))
    nll = torch.zeros(len(offsets), dtype=log_probs.dtype, device=log_probs.device)
    nll = nll.index_add(0, rows, -log_probs[rows, indices] * values)
    if out.posterior is not None:
        nll = nll + beta * out.posterior.kl_to_prior()
    return nll


def multinomial_loss_dense(out: MultOutput, x: torch.Tensor, beta: float) -> torch.Tensor:
    """Reference: the same loss on dense (B, I) rows."""
    nll = -(F.log_softmax(out.logits, dim=-1) * x).sum(-1)
    return nll + beta * out.posterior.kl_to_prior() if out.posterior is not None else nll


# ----------------------------------------------------------------------------------------------- AutoRec
class AutoRec(nn.Module):
    """I-AutoRec (an item's ratings by all users in, the same vector out) or U-AutoRec."""

    def __init__(self, cfg: RecommenderConfig) -> None:
        super().__init__()
        cfg.check_sizes()
        self.cfg = cfg
        self.width = cfg.n_users if cfg.autorec_side == "item" else cfg.n_items  # length of one rating vector
        self.encoder = SparseLinear(self.width, cfg.hidden_dim)  # V, mu
        self.decoder = nn.Linear(cfg.hidden_dim, self.width)  # W, b

    def encode(self, indices: torch.Tensor, offsets: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """(B, H) codes of B observed rating vectors."""
        return torch.sigmoid(self.encoder(indices, offsets, values))

    def forward(self, indices: torch.Tensor, offsets: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """(B, width) reconstructed ratings."""
        return self.decoder(self.encode(indices, offsets, values))

    def forward_dense(self, r: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.sigmoid(self.encoder.dense(r)))

    def l2(self) -> torch.Tensor:
        """||W||^2 + ||V||^2 (the regularised weights of the paper)."""
        return self.encoder.weight.weight.square().sum() + self.decoder.weight.square().sum()


def masked_squared_error(pred: torch.Tensor, indices: torch.Tensor, offsets: torch.Tensor,
                         target: torch.Tensor) -> torch.Tensor:
    """(B,) per row: sum of squared errors at the observed entries only (pred (B, width))."""
    rows = row_ids(offsets, len(indices))
    err = (pred[rows, indices] - target).square()
    return torch.zeros(len(offsets), dtype=err.dtype, device=err.device).index_add(0, rows, err)


# ----------------------------------------------------------------------------------------------- two towers
class TwoTower(nn.Module):
    """User tower and item tower into one D-dim space; score = cos(u, i) / temperature.

    The side features live in buffers (saved with the weights): CSR token bags per user and per item, the
    title vectors, which items were seen in training (`item_known`: the others use the unknown id 0) and the
    log training popularity for the log-Q correction."""

    def __init__(self, cfg: RecommenderConfig) -> None:
        super().__init__()
        cfg.check_sizes()
        self.cfg = cfg
        d = cfg.latent_dim
        # item tower
        self.item_id = nn.Embedding(cfg.n_items + 1, d)  # row 0: the unknown (cold) item
        self.item_tokens = nn.EmbeddingBag(max(1, cfg.n_item_tokens), d, mode="mean")
        self.title = nn.Linear(cfg.title_dim, d) if cfg.title_dim else None
        self.item_mlp = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(d, d))
        # user tower
        self.history = nn.EmbeddingBag(cfg.n_items + 1, d, mode="mean")  # the bag of the user's items
        self.user_tokens = nn.EmbeddingBag(max(1, cfg.n_user_tokens), d, mode="mean")
        self.user_mlp = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(d, d))
        # side features (filled by set_features; zeros keep a freshly built model valid)
        self.register_buffer("item_token_indptr", torch.zeros(cfg.n_items + 1, dtype=torch.long))
        self.register_buffer("item_token_indices", torch.zeros(0, dtype=torch.long))
        self.register_buffer("user_token_indptr", torch.zeros(cfg.n_users + 1, dtype=torch.long))
        self.register_buffer("user_token_indices", torch.zeros(0, dtype=torch.long))
        self.register_buffer("item_titles", torch.zeros(cfg.n_items, cfg.title_dim))
        self.register_buffer("item_known", torch.ones(cfg.n_items, dtype=torch.bool))
        self.register_buffer("item_log_popularity", torch.zeros(cfg.n_items))

    def set_features(self, *, item_token_indptr: torch.Tensor, item_token_indices: torch.Tensor,
                     user_token_indptr: torch.Tensor, user_token_indices: torch.Tensor,
                     item_titles: torch.Tensor | None, item_counts: torch.Tensor) -> None:
        """Install the side features and the training popularity (items never seen become unknown ids)."""
        for name, value in (("item_token_indptr", item_token_indptr), ("item_token_indices", item_token_indices),
                            ("user_token_indptr", user_token_indptr), ("user_token_indices", user_token_indices)):
            setattr(self, name, value.long())
        if self.title is not None:
            if item_titles is None or tuple(item_titles.shape) != (self.cfg.n_items, self.cfg.title_dim):
                raise ConfigError(f"item titles must be ({self.cfg.n_items}, {self.cfg.title_dim})")
            self.item_titles = item_titles.float()
        counts = item_counts.float()
        self.item_known = counts > 0
        self.item_log_popularity = torch.log((counts + 1) / (counts + 1).sum())  # smoothed log sampling prob

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # The token tables' lengths depend on the data: take the saved ones' shapes before copying into them.
        for name in ("item_token_indices", "user_token_indices"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def encode_items(self, items: torch.Tensor) -> torch.Tensor:
        """(B,) item indices -> (B, D) unit vectors."""
        ids = torch.where(self.item_known[items], items + 1, torch.zeros_like(items))
        if self.training and self.cfg.id_dropout:
            ids = torch.where(torch.rand(ids.shape, device=ids.device) < self.cfg.id_dropout, 0, ids)
        tokens, offsets = gather_bags(items, self.item_token_indptr, self.item_token_indices)
        h = self.item_id(ids) + self.item_tokens(tokens, offsets)  # (B, D)
        if self.title is not None:
            h = h + self.title(self.item_titles[items])
        return F.normalize(self.item_mlp(h), dim=-1)

    def encode_users(self, users: torch.Tensor, history: torch.Tensor, history_offsets: torch.Tensor,
                     history_weights: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) user indices + their history bags (item indices) -> (B, D) unit vectors.

        `history_weights` (per history item, 0 or 1) lets training drop the positive from its own user's bag."""
        tokens, offsets = gather_bags(users, self.user_token_indptr, self.user_token_indices)
        if history_weights is None:
            h = self.history(history + 1, history_offsets)
        else:  # a weighted mean: sum of kept items / their count
            rows = row_ids(history_offsets, len(history))
            kept = torch.zeros(len(users), device=users.device).index_add(0, rows, history_weights)
            h = F.embedding_bag(history + 1, self.history.weight, history_offsets, mode="sum",
                                per_sample_weights=history_weights / kept.clamp_min(1)[rows])
        h = h + self.user_tokens(tokens, offsets)
        return F.normalize(self.user_mlp(h), dim=-1)

    def all_items(self, batch_size: int = 4096) -> torch.Tensor:
        """(I, D) every item's vector."""
        items = torch.arange(self.cfg.n_items, device=self.item_known.device)
        return torch.cat([self.encode_items(items[i:i + batch_size]) for i in range(0, len(items), batch_size)])

    def forward(self, users: torch.Tensor, items: torch.Tensor, history: torch.Tensor,
                history_offsets: torch.Tensor, history_weights: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) in-batch sampled-softmax loss per (user, positive item) pair: the other B - 1 items of the batch
        are the negatives, their logits corrected by -log Q(item) (Yi et al. 2019), repeats of the positive
        masked out."""
        u = self.encode_users(users, history, history_offsets, history_weights)  # (B, D)
        v = self.encode_items(items)  # (B, D)
        logits = u @ v.T / self.cfg.temperature - self.item_log_popularity[items][None, :]  # (B, B)
        same = items[:, None] == items[None, :]
        logits = logits.masked_fill(same & ~torch.eye(len(items), dtype=torch.bool, device=items.device), -1e9)
        return F.cross_entropy(logits, torch.arange(len(items), device=items.device), reduction="none")


def build_recommender(cfg: RecommenderConfig) -> nn.Module:
    if cfg.kind in ("mult-vae", "mult-dae"):
        return MultVAE(cfg)
    if cfg.kind == "autorec":
        return AutoRec(cfg)
    return TwoTower(cfg)


__all__ = ["AutoRec", "MultOutput", "MultVAE", "RecommenderConfig", "TwoTower", "build_recommender",
           "masked_squared_error", "multinomial_loss", "multinomial_loss_dense", "to_dense"]
