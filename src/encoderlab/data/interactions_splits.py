"""The seeded evaluation protocols of recommenders: a random split of the ratings (rating prediction), held-out
users with fold-in (Liang et al. 2018; one split or K folds over users), leave-last-out by time, and items held
out of training entirely (cold start)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputDataError
from .interactions_core import Interactions, SparseRows, binary_rows


# ----------------------------------------------------------------------------------------------- splits
@dataclass
class RatingSplit:
    """Rating prediction: the ratings split at random (all three over the same id maps)."""

    train: Interactions
    val: Interactions
    test: Interactions


def rating_split(data: Interactions, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> RatingSplit:
    """A seeded random split of the ratings into train / validation / test."""
    if not data.explicit:
        raise InputDataError(f"{data.name}: rating prediction needs ratings; set rating_column= to the rating "
                             "column, or use a top-N protocol for implicit data")
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise InputDataError(f"split fractions {list(fractions)} must be three positive numbers summing to 1")
    order = np.random.default_rng(seed).permutation(len(data))
    a = int(round(fractions[0] * len(data)))
    b = a + int(round(fractions[1] * len(data)))
    parts = []
    for chosen in (order[:a], order[a:b], order[b:]):
        mask = np.zeros(len(data), dtype=bool)
        mask[chosen] = True
        parts.append(data.where(mask))
    return RatingSplit(*parts)


@dataclass
class TopNSplit:
    """A top-N protocol: a training matrix, and per evaluation split aligned input / target rows.

    A model is fitted on `train` (rows = `train_users`); it then scores an evaluation user from that user's
    input row (its fold-in or its history) and is measured on the target row. Input items are never
    recommended (seen items are excluded). `*_candidates` restricts the ranking to some items (cold start)."""

    protocol: str
    train: SparseRows
    train_users: np.ndarray
    val_input: SparseRows
    val_target: SparseRows
    val_users: np.ndarray
    test_input: SparseRows
    test_target: SparseRows
    test_users: np.ndarray
    val_candidates: np.ndarray | None = None
    test_candidates: np.ndarray | None = None

    @property
    def n_items(self) -> int:
        return self.train.n_cols

    def evaluation(self, which: str) -> tuple[SparseRows, SparseRows, np.ndarray, np.ndarray | None]:
        """(input, target, users, candidates) of 'val' or 'test'."""
        if which not in ("val", "test"):
            raise ValueError(f"which={which!r}: 'val' or 'test'")
        return (getattr(self, f"{which}_input"), getattr(self, f"{which}_target"), getattr(self, f"{which}_users"),
                getattr(self, f"{which}_candidates"))

    def summary(self) -> dict[str, int]:
        return {"train_users": self.train.n_rows, "train_interactions": self.train.nnz,
                "val_users": self.val_input.n_rows, "test_users": self.test_input.n_rows,
                "val_targets": self.val_target.nnz, "test_targets": self.test_target.nnz}


def _check_enough(n: int, what: str, fix: str) -> None:
    if n == 0:
        raise InputDataError(f"no {what}; {fix}")


def strong_generalization(data: Interactions, heldout: float = 0.1, fold_in: float = 0.8, seed: int = 0,
                          threshold: float | None = 3.5, min_items: int = 5, folds: int = 0,
                          fold: int = 0) -> TopNSplit:
    """Liang et al. (2018): users with >= `min_items` positives are split into train / val / test users
    (`heldout` of them each for val and test); a held-out user's positives are split at random into a fold-in
    input (`fold_in`) and a target (the rest, at least one). Items no training user interacted with are
    dropped from the held-out rows (no collaborative model can rank them).

    Cross-validation over users (`folds` = K >= 2): the users are shuffled once by `seed` and cut into K
    near-equal folds; fold `fold` is the test users, and the validation users (`heldout` of all users) are
    carved from the other K - 1 folds, the rest train. Running fold = 0..K-1 tests every user exactly once,
    every model on the same folds; the validation users never include a test user of the same fold."""
    if not 0 < heldout < 0.5 or not 0 < fold_in < 1:
        raise InputDataError(f"heldout={heldout} must be in (0, 0.5) and fold_in={fold_in} in (0, 1)")
    if folds == 1 or folds < 0 or (folds and not 0 <= fold < folds):
        raise InputDataError(f"folds={folds}, fold={fold}: folds is 0 (one held-out split) or K >= 2 with "
                             f"0 <= fold < K")
    x = data.positives(threshold).matrix(binary=True)
    users = np.flatnonzero(x.row_lengths() >= min_items)
    _check_enough(len(users), f"user of {data.name} has {min_items} or more positives",
                  "lower the rating threshold or use more data")
    rng = np.random.default_rng(seed)
    users = users[rng.permutation(len(users))]
    n_out = max(1, int(round(heldout * len(users))))
    if folds:
        bounds = np.linspace(0, len(users), folds + 1).round().astype(int)
        test_users = users[bounds[fold]:bounds[fold + 1]]
        rest = np.concatenate([users[:bounds[fold]], users[bounds[fold + 1]:]])
        if folds > len(users) or len(rest) < 2 * n_out:
            raise InputDataError(f"{data.name}: only {len(users)} users have {min_items}+ positives, too few for "
                                 f"{folds} folds with heldout={heldout}; lower folds= or heldout=")
        val_users, train_users = rest[:n_out], np.sort(rest[n_out:])
        rng = np.random.default_rng([seed, fold])  # the fold-ins of fold `fold`
    else:
        if len(users) < 3 * n_out:
            raise InputDataError(f"{data.name}: only {len(users)} users have {min_items}+ positives, too few for "
                                 f"held-out users; lower heldout= or use more data")
        val_users, test_users, train_users = users[:n_out], users[n_out:2 * n_out], np.sort(users[2 * n_out:])
    train = x.take(train_users)
    seen = train.col_counts() > 0

    def fold_rows(rows: np.ndarray) -> tuple[SparseRows, SparseRows]:
        ins, outs = [], []
        for r in rows:
            items, _ = x.row(r)
            items = items[seen[items]]
            chosen = np.zeros(len(items), dtype=bool)
            n_in = min(len(items) - 1, int(round(fold_in * len(items))))
            chosen[rng.permutation(len(items))[:n_in]] = True
            ins.append(items[chosen])
            outs.append(items[~chosen])
        return binary_rows(ins, x.n_cols), binary_rows(outs, x.n_cols)

    val_in, val_out = fold_rows(np.sort(val_users))
    test_in, test_out = fold_rows(np.sort(test_users))
    return TopNSplit("strong", train, train_users, val_in, val_out, np.sort(val_users), test_in, test_out,
                     np.sort(test_users))


def leave_last_out(data: Interactions, threshold: float | None = 3.5, min_items: int = 3) -> TopNSplit:
    """By time: each user's last positive is the test target, the one before it the validation target; the
    model trains on everything earlier (all users). Validation scores from that history, test from it plus
    the validation item. Ties in time are broken by file order."""
    if data.timestamp is None:
        raise InputDataError(f"{data.name}: leave-last-out needs timestamps; set timestamp_column=, or use the "
                             "strong-generalisation protocol")
    pos = data.positives(threshold)
    order = np.lexsort((np.arange(len(pos)), pos.timestamp, pos.user))  # by user, then time, then file order
    user, item = pos.user[order], pos.item[order]
    counts = np.bincount(user, minlength=data.n_users)
    users = np.flatnonzero(counts >= min_items)
    _check_enough(len(users), f"user of {data.name} has {min_items} or more positives", "use more data")
    starts = np.concatenate([[0], np.cumsum(counts)])
    history, val_t, test_t = [], [], []
    for u in users:
        seq = item[starts[u]:starts[u + 1]]
        history.append(seq[:-2])
        val_t.append(seq[-2:-1])
        test_t.append(seq[-1:])
    train = binary_rows(history, data.n_items)
    test_in = binary_rows([np.concatenate([h, v]) for h, v in zip(history, val_t, strict=True)], data.n_items)
    return TopNSplit("leave-last-out", train, users, train, binary_rows(val_t, data.n_items), users, test_in,
                     binary_rows(test_t, data.n_items), users)


def cold_start_items(data: Interactions, fraction: float = 0.2, seed: int = 0,
                     threshold: float | None = 3.5) -> TopNSplit:
    """Items held out entirely: `fraction` of the items with a positive are removed from training and split in
    half into validation and test cold items. Every user trains on their warm positives; an evaluation user
    is one with a positive on a cold item of the split, scored from the warm history and ranked over that
    split's cold items only (the standard cold-start ranking)."""
    if not 0 < fraction < 1:
        raise InputDataError(f"cold_fraction={fraction} must be in (0, 1)")
    x = data.positives(threshold).matrix(binary=True)
    items = np.flatnonzero(x.col_counts() > 0)
    rng = np.random.default_rng(seed)
    cold = items[rng.permutation(len(items))[:max(2, int(round(fraction * len(items))))]]
    val_items, test_items = np.sort(cold[: len(cold) // 2]), np.sort(cold[len(cold) // 2:])
    is_cold = np.zeros(x.n_cols, dtype=bool)
    is_cold[cold] = True
    rows = x.row_ids()
    warm = ~is_cold[x.indices]
    train = SparseRows.from_coo(rows[warm], x.indices[warm], x.values[warm], x.n_rows, x.n_cols)
    users_all = np.arange(x.n_rows)

    def targets(chosen: np.ndarray) -> tuple[SparseRows, SparseRows, np.ndarray]:
        mask = np.zeros(x.n_cols, dtype=bool)
        mask[chosen] = True
        keep = mask[x.indices]
        target = SparseRows.from_coo(rows[keep], x.indices[keep], x.values[keep], x.n_rows, x.n_cols)
        users = np.flatnonzero((target.row_lengths() > 0) & (train.row_lengths() > 0))
        return train.take(users), target.take(users), users

    val_in, val_out, val_users = targets(val_items)
    test_in, test_out, test_users = targets(test_items)
    _check_enough(len(test_users), "test user has a positive on a cold item", "raise cold_fraction=")
    return TopNSplit("cold-start", train, users_all, val_in, val_out, val_users, test_in, test_out, test_users,
                     val_items, test_items)


__all__ = ["RatingSplit", "TopNSplit", "cold_start_items", "leave_last_out", "rating_split", "strong_generalization"]
