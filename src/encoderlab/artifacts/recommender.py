"""`Recommender`: a trained recommender (Mult-VAE / Mult-DAE, AutoRec or two-tower), used by user and item ids.

    rec = Recommender.from_dir("runs/ml100k-multvae")      # the run directory or its final/ directory
    rec.recommend("196", top=10)                          # [("50", 7.31), ...]: unseen items, best first
    rec.recommend_history(["1", "50", "181"], top=10)     # a new user from their items (Mult-VAE / DAE)
    rec.score("196", ["1", "2"])                          # model scores of chosen items
    rec.predict("196", ["1", "2"])                        # AutoRec: predicted ratings (1-5)
    rec.encode(["196", "186"])                            # (2, d) user vectors
    rec.encode(["1", "2"], side="item")                   # (2, d') item vectors
    rec.save("somewhere")

A saved recommender is a directory with `model.safetensors` (weights, and the two-tower's side-feature tables),
`history.safetensors` (every user's seen items, as CSR arrays: what `recommend` excludes and what the
user-free models encode a user from) and `recommender.json` (kind, model config, id maps) — the file whose
name marks this kind of saved model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..config import from_dict
from ..data.interactions import Interactions, SparseRows
from ..errors import CheckpointError, InputDataError
from ..files import atomic_write_json
from ..models.recommender import AutoRec, MultVAE, RecommenderConfig, TwoTower, build_recommender
from ..weights import load_weights, save_weights
from .registry import Kind
from .runs import model_dir

INFO_FILE = "recommender.json"
WEIGHTS_FILE = "model.safetensors"
HISTORY_FILE = "history.safetensors"
FORMAT_VERSION = 1


@dataclass
class RecommenderInfo:
    """What recommender.json holds."""

    kind: str
    """mult-vae, mult-dae, autorec or two-tower."""
    model: dict[str, Any]
    """The `RecommenderConfig` fields."""
    protocol: str
    """The protocol it was trained and measured under."""
    data: str
    """The data it was trained on."""
    user_ids: list[str]
    item_ids: list[str]
    global_mean: float | None = None
    """AutoRec: the training mean rating, predicted where a vector has no training rating."""
    format_version: int = FORMAT_VERSION

    @classmethod
    def of(cls, cfg: RecommenderConfig, data: Interactions, protocol: str,
           global_mean: float | None = None) -> RecommenderInfo:
        return cls(cfg.kind, asdict(cfg), protocol, data.name, list(data.user_ids), list(data.item_ids), global_mean)

    @classmethod
    def from_dict(cls, raw: Any, where: str = INFO_FILE) -> RecommenderInfo:
        """From recommender.json's content; a missing key or another format is a CheckpointError naming it."""
        if not isinstance(raw, dict):
            raise CheckpointError(f"{where} holds {type(raw).__name__}, not an object; re-run `encoderlab recommend`")
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in raw]
        if missing:
            raise CheckpointError(f"{where} has no {', '.join(missing)}; re-run `encoderlab recommend`")
        if raw.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
            raise CheckpointError(f"{where} has format_version {raw['format_version']}; this encoderlab reads "
                                  f"{FORMAT_VERSION}: re-run `encoderlab recommend` or update encoderlab")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def recommender_dir(path: str | Path) -> Path | None:
    """`path` or its final/ directory, whichever holds recommender.json; None if neither does."""
    return model_dir(path, INFO_FILE)


@torch.no_grad()
def score_rows(model: nn.Module, rows: SparseRows, users: np.ndarray | None,
               item_vectors: torch.Tensor | None = None) -> np.ndarray:
    """(B, I) scores from users' history rows: Mult-VAE/DAE logits, U-AutoRec reconstructions, or two-tower
    cosines / temperature against every item (`item_vectors`, if already computed). The training task scores
    its evaluation users with this too, so a saved model ranks exactly as it did in training."""
    model.eval()
    bags = rows.bags()
    if isinstance(model, MultVAE):
        return model(bags["indices"], bags["offsets"], torch.ones_like(bags["values"])).logits.numpy()
    if isinstance(model, TwoTower):
        if users is None:
            raise InputDataError("a two-tower model encodes known users (it uses their features); pass a user id")
        vectors = item_vectors if item_vectors is not None else model.all_items()
        u = model.encode_users(torch.from_numpy(np.asarray(users)), bags["indices"], bags["offsets"])
        return (u @ vectors.T).numpy()
    if isinstance(model, AutoRec) and model.cfg.autorec_side == "user":
        return model(**bags).numpy()
    raise InputDataError(f"{type(model).__name__} does not score users from history rows")


class Recommender:
    """A trained recommender with its id maps and every user's seen items: `recommend`, `score`, `predict`
    (AutoRec), `encode` (user or item vectors), `recommend_history` (a new user, user-free models)."""

    kind = "recommender"

    def __init__(self, model: nn.Module, info: RecommenderInfo, history: SparseRows) -> None:
        self.model = model.eval()
        self.info = info
        self.history = history  # (U, I): values are ratings (AutoRec) or 1
        self.user_index = {u: i for i, u in enumerate(info.user_ids)}
        self.item_index = {t: i for i, t in enumerate(info.item_ids)}
        self._item_reconstructions: np.ndarray | None = None

    # ------------------------------------------------------------------ files
    @classmethod
    def from_dir(cls, path: str | Path) -> Recommender:
        directory = recommender_dir(path)
        if directory is None:
            raise CheckpointError(f"{str(path)!r} is not a recommender: no {INFO_FILE} in it or in its final/; pass "
                                  "the out_dir of a finished `encoderlab recommend` run")
        where = directory / INFO_FILE
        try:
            raw = json.loads(where.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{where} is not valid JSON ({exc}); re-run `encoderlab recommend`") from exc
        info = RecommenderInfo.from_dict(raw, str(where))
        model = build_recommender(from_dict(RecommenderConfig, info.model))
        model.load_state_dict(load_weights(directory / WEIGHTS_FILE))
        h = load_weights(directory / HISTORY_FILE)
        history = SparseRows(h["indptr"].numpy(), h["indices"].numpy(), h["values"].numpy(), len(info.item_ids))
        return cls(model, info, history)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_weights(directory / WEIGHTS_FILE, self.model.state_dict())
        h = self.history
        save_weights(directory / HISTORY_FILE, {"indptr": torch.from_numpy(h.indptr), "indices": torch.from_numpy(
            h.indices), "values": torch.from_numpy(h.values)})
        atomic_write_json(directory / INFO_FILE, self.info.to_dict())
        return directory

    # ------------------------------------------------------------------ ids
    @property
    def model_kind(self) -> str:
        """mult-vae, mult-dae, autorec or two-tower."""
        return self.info.kind

    def _user(self, user: str) -> int:
        index = self.user_index.get(str(user))
        if index is None:
            shown = ", ".join(self.info.user_ids[:5])
            raise InputDataError(f"user {user!r} is not in this model ({len(self.user_index)} users, e.g. {shown}); "
                                 "for a new user give their items (`recommend-predict --history ITEM,ITEM`, or "
                                 "recommend_history() in Python)")
        return index

    def _items(self, items: Sequence[str]) -> np.ndarray:
        if isinstance(items, str):
            items = [items]
        missing = [i for i in items if str(i) not in self.item_index]
        if missing:
            shown = ", ".join(self.info.item_ids[:5])
            raise InputDataError(f"items {missing[:5]} are not in this model ({len(self.item_index)} items, e.g. "
                                 f"{shown}); ids are the item column's values as text")
        return np.array([self.item_index[str(i)] for i in items], dtype=np.int64)

    # ------------------------------------------------------------------ scores
    def scores_for(self, rows: SparseRows, users: np.ndarray | None) -> np.ndarray:
        """(B, I) scores of users given by history rows (and their indices, which the two-tower's user features
        and I-AutoRec need; None for a new user)."""
        if isinstance(self.model, AutoRec) and self.model.cfg.autorec_side == "item":
            if users is None:
                raise InputDataError("I-AutoRec scores known users (a column of its item vectors); pass a user id")
            return self._all_item_reconstructions()[:, users].T
        return score_rows(self.model, rows, users)

    @torch.no_grad()
    def _all_item_reconstructions(self) -> np.ndarray:
        """I-AutoRec: (I, U) every item's reconstructed rating vector (cached)."""
        if self._item_reconstructions is None:
            items = self.history.transpose()
            out = np.full((items.n_rows, items.n_cols), self.info.global_mean or 0.0, dtype=np.float32)
            known = np.flatnonzero(items.row_lengths() > 0)
            for start in range(0, len(known), 512):
                chunk = known[start:start + 512]
                out[chunk] = self.model(**items.bags(chunk)).numpy()
            self._item_reconstructions = out
        return self._item_reconstructions

    def scores_of(self, user: str) -> np.ndarray:
        """(I,) the model's score of every item for a known user."""
        u = self._user(user)
        return self.scores_for(self.history.take([u]), np.array([u]))[0]

    def score(self, user: str, items: Sequence[str]) -> np.ndarray:
        return self.scores_of(user)[self._items(items)]

    def predict(self, user: str, items: Sequence[str]) -> np.ndarray:
        """Predicted ratings (clipped to 1-5) of a rating model (AutoRec)."""
        if not isinstance(self.model, AutoRec):
            raise InputDataError(f"predict() gives ratings; this {self.model_kind} model ranks items: use "
                                 "recommend() or score()")
        return np.clip(self.score(user, items), 1.0, 5.0)

    def _top(self, scores: np.ndarray, seen: np.ndarray, top: int) -> list[tuple[str, float]]:
        if top < 1:
            raise InputDataError(f"top={top} must be at least 1")
        scores = scores.astype(np.float64).copy()
        scores[seen] = -np.inf
        order = np.argsort(-scores, kind="stable")[:top]
        return [(self.info.item_ids[i], float(scores[i])) for i in order if np.isfinite(scores[i])]

    def recommend(self, user: str, top: int = 10, exclude_seen: bool = True) -> list[tuple[str, float]]:
        """The `top` best items for a known user, best first, as (item id, score); seen items are left out."""
        u = self._user(user)
        seen = self.history.row(u)[0] if exclude_seen else np.zeros(0, np.int64)
        return self._top(self.scores_of(user), seen, top)

    def recommend_history(self, items: Sequence[str], top: int = 10) -> list[tuple[str, float]]:
        """Recommendations for a new user described by the items they interacted with (user-free models)."""
        chosen = np.unique(self._items(items))
        if not len(chosen):
            raise InputDataError("the history is empty; give at least one item id")
        if not isinstance(self.model, MultVAE) and not (isinstance(self.model, AutoRec)
                                                        and self.model.cfg.autorec_side == "user"):
            raise InputDataError(f"a {self.model_kind} model recommends for known users only; use recommend(user)")
        row = SparseRows(np.array([0, len(chosen)]), chosen, np.ones(len(chosen), np.float32), len(self.item_index))
        return self._top(self.scores_for(row, None)[0], chosen, top)

    # ------------------------------------------------------------------ vectors
    @torch.no_grad()
    def encode(self, ids: Sequence[str], side: Literal["user", "item"] = "user") -> np.ndarray:
        """(N, d) float32 vectors of users or items.

        Mult-*: a user's code (posterior mean) / an item's output embedding (d = hidden_dim, or latent_dim
        if hidden_dim=0); AutoRec (item-based): an item's code / a user's decoder row; two-tower: the towers'
        unit vectors."""
        if side not in ("user", "item"):
            raise InputDataError(f"side={side!r}: 'user' or 'item'")
        if side == "user":
            index = np.array([self._user(u) for u in ([ids] if isinstance(ids, str) else ids)], dtype=np.int64)
        else:
            index = self._items(ids)
        m = self.model
        if isinstance(m, TwoTower):
            if side == "item":
                return m.encode_items(torch.from_numpy(index)).numpy()
            bags = self.history.bags(index)
            return m.encode_users(torch.from_numpy(index), bags["indices"], bags["offsets"]).numpy()
        if isinstance(m, MultVAE):
            if side == "item":
                return m.item_vectors()[torch.from_numpy(index)].numpy()
            bags = self.history.bags(index)
            return m.encode(bags["indices"], bags["offsets"], torch.ones_like(bags["values"])).numpy()
        encoded_side = m.cfg.autorec_side  # AutoRec: one side is encoded, the other is a decoder row
        if side == encoded_side:
            rows = self.history.transpose() if side == "item" else self.history
            return m.encode(**rows.bags(index)).numpy()
        return m.decoder.weight[torch.from_numpy(index)].numpy()


KIND = Kind(
    name="recommender",
    summary="a recommender (Mult-VAE/DAE, AutoRec or two-tower). Recommend with `encoderlab recommend-predict "
            "--model {path} --user ID`; in Python Recommender.from_dir(path).recommend(user)",
    holds=lambda d: (d / INFO_FILE).is_file(),
    load=Recommender.from_dir,
)


__all__ = ["INFO_FILE", "KIND", "Recommender", "RecommenderInfo", "recommender_dir", "score_rows"]
