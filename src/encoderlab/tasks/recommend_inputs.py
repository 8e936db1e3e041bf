"""What the recommend task feeds its models: tagged batch positions for the Trainer, evaluation and two-tower
training batches, the two-tower's side features (token bags, MiniLM title vectors), AutoRec's rating vectors
and predictions, and the model config with the data's sizes filled in."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.interactions import FeatureTable, Interactions, SparseRows, TopNSplit
from ..errors import ConfigError
from ..models.recommender import AutoRec, RecommenderConfig, TwoTower

if TYPE_CHECKING:
    from .recommend import RecommendConfig


# ----------------------------------------------------------------------------------------------- data
class Positions(Dataset):
    """Positions 0..n-1 tagged with what they index ("train" or "val"): the Trainer uses one collate function
    for training and evaluation batches, and `by_tag` sends each batch to the right one."""

    def __init__(self, n: int, tag: str) -> None:
        self.n, self.tag = n, tag

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[str, int]:
        return self.tag, i


def by_tag(**collates):
    """One collate function over tagged positions: collates[tag]([positions])."""

    def collate(items: list[tuple[str, int]]) -> Any:
        return collates[items[0][0]]([i for _, i in items])

    return collate


def top_n_batch(split: TopNSplit, which: str):
    """collate for evaluation users of `which`: their input bags, target bags and user indices."""
    inputs, targets, users, _ = split.evaluation(which)

    def collate(positions: list[int]) -> dict[str, Any]:
        rows = np.asarray(positions)
        return {"input": inputs.bags(rows), "target": targets.bags(rows), "users": torch.from_numpy(users[rows]),
                "rows": torch.from_numpy(rows)}

    return collate


def history_batch(train: SparseRows, users: np.ndarray):
    """collate for two-tower training pairs (user, positive item): the user's history without that item."""
    pair_users, pair_items = train.row_ids(), train.indices

    def collate(positions: list[int]) -> dict[str, Any]:
        p = np.asarray(positions)
        rows, items = pair_users[p], pair_items[p]
        bags = train.bags(rows)
        keep = (bags["indices"] != torch.from_numpy(np.repeat(items, train.row_lengths()[rows]))).float()
        return {"users": torch.from_numpy(users[rows]), "items": torch.from_numpy(items),
                "history": bags["indices"], "history_offsets": bags["offsets"], "history_weights": keep}

    return collate


# ----------------------------------------------------------------------------------------------- features
def feature_bags(table: FeatureTable | None, n: int, min_count: int, text: bool) -> tuple[SparseRows, list[str]]:
    """(entities x vocabulary) token bags and the vocabulary; empty when there is no feature table."""
    if table is None:
        return SparseRows(np.zeros(n + 1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), 0), []
    vocab = table.vocabulary(min_count, text=text)
    return table.bags(vocab, text=text), vocab


def title_vectors(cfg: RecommendConfig, data: Interactions) -> torch.Tensor | None:
    """(I, 384) MiniLM vectors of the item titles (our TextEncoder), or None."""
    table = data.item_features
    if cfg.title != "minilm":
        return None
    if table is None or table.text is None:
        raise ConfigError("title=minilm needs item titles: set item_features= and item_text_column= (ml-100k has "
                          "them), or title=none")
    from ..artifacts.text_encoder import TextEncoder

    encoder = TextEncoder.from_pretrained(cfg.title_model)
    titles = [t or "(no title)" for t in table.text]
    return torch.from_numpy(encoder.encode(titles, batch_size=128))


@dataclass
class SideFeatures:
    """The two-tower's inputs besides interactions: token bags per item and per user, title vectors."""

    items: SparseRows
    users: SparseRows
    titles: torch.Tensor | None


def side_features(cfg: RecommendConfig, data: Interactions) -> SideFeatures:
    items, _ = feature_bags(data.item_features, data.n_items, cfg.feature_min_count, text=cfg.title == "words")
    users, _ = feature_bags(data.user_features, data.n_users, cfg.feature_min_count, text=False)
    return SideFeatures(items, users, title_vectors(cfg, data))


def install_features(model: TwoTower, features: SideFeatures, train: SparseRows) -> None:
    items, users = features.items, features.users
    model.set_features(item_token_indptr=torch.from_numpy(items.indptr), item_token_indices=torch.from_numpy(
        items.indices), user_token_indptr=torch.from_numpy(users.indptr),
        user_token_indices=torch.from_numpy(users.indices), item_titles=features.titles,
        item_counts=torch.from_numpy(train.col_counts()))


def with_sizes(cfg: RecommendConfig, data: Interactions, features: SideFeatures | None) -> RecommenderConfig:
    """The model config with the data's sizes filled in."""
    sizes: dict[str, int] = {"n_items": data.n_items, "n_users": data.n_users}
    if features is not None:
        sizes["n_item_tokens"] = features.items.n_cols
        sizes["n_user_tokens"] = features.users.n_cols
        sizes["title_dim"] = 0 if features.titles is None else features.titles.shape[1]
    for name, value in sizes.items():
        given = getattr(cfg.model, name)
        if given and given != value:
            raise ConfigError(f"model.{name}={given} but the data gives {value}; remove model.{name} (it is "
                              "filled in from the data)")
    return dataclasses.replace(cfg.model, **sizes)


# ----------------------------------------------------------------------------------------------- AutoRec
def rating_vectors(ratings: Interactions, side: str) -> SparseRows:
    """The vectors AutoRec encodes: items x users (I-AutoRec) or users x items (U-AutoRec)."""
    x = ratings.matrix()
    return x.transpose() if side == "item" else x


@torch.no_grad()
def autorec_predict(model: AutoRec, train: SparseRows, users: np.ndarray, items: np.ndarray, fallback: float,
                    batch_size: int = 256) -> np.ndarray:
    """Ratings for (user, item) pairs from the training vectors, clipped to [1, 5]; a pair whose vector has
    no training rating gets `fallback` (the training mean)."""
    model.eval()
    rows, cols = (items, users) if model.cfg.autorec_side == "item" else (users, items)
    pred = np.full(len(rows), fallback, dtype=np.float64)
    known = train.row_lengths()[rows] > 0
    order = np.unique(rows[known])
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        out = model(**{k: v for k, v in train.bags(chunk).items()}).numpy()  # (chunk, width)
        where = np.searchsorted(chunk, rows)
        hit = known & (where < len(chunk)) & (chunk[np.minimum(where, len(chunk) - 1)] == rows)
        pred[hit] = out[where[hit], cols[hit]]
    return np.clip(pred, 1.0, 5.0)


def rating_eval_batch(train: SparseRows, target: SparseRows):
    def collate(positions: list[int]) -> dict[str, Any]:
        return {"input": train.bags(positions), "target": target.bags(positions)}

    return collate


__all__ = ["Positions", "SideFeatures", "autorec_predict", "by_tag", "feature_bags", "history_batch",
           "install_features", "rating_eval_batch", "rating_vectors", "side_features", "title_vectors",
           "top_n_batch", "with_sizes"]
