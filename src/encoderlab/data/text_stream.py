"""Texts of a file one at a time, for corpora that do not fit in memory: `.txt`, `.jsonl`, `.csv` / `.tsv`,
`.parquet` (read in record batches of its text column).

The same rows and errors as `read_texts` (text_input.py), without reading the file whole: `.txt` yields every
line (a blank line is an empty text, so row i is line i; lines end at \\n, \\r\\n or \\r only, where
`str.splitlines` also splits at rarer separators such as \\f or U+2028), `.jsonl` the `text_field` of every
non-blank line, `.csv` / `.tsv` the `text_field` column of every row. A bad line stops the stream with an error
naming file and line, so output row i always belongs to input row i.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputDataError
from .text_input import (
    BOM,
    TEXT_SUFFIXES,
    _conversion_hint,
    check_header_column,
    json_array_hint,
    jsonl_text,
    pyarrow_parquet,
)


def check_text_file(path: str | Path) -> Path:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TEXT_SUFFIXES:
        raise InputDataError(f"input file {str(path)!r} has suffix {suffix or '(none)'!r}; "
                             f"use one of {', '.join(TEXT_SUFFIXES)}{json_array_hint(path)}")
    if not path.is_file():
        raise InputDataError(f"input file {str(path)!r} does not exist; check the path" if not path.exists() else
                             f"input {str(path)!r} is a directory; pass a file")
    return path


def count_rows(path: str | Path) -> int | None:
    """Lines of a .txt / .jsonl (a progress bar's total; counted in 1 MB blocks), rows of a .parquet (from its
    footer); None for CSV tables."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        return pyarrow_parquet(path).ParquetFile(path).metadata.num_rows
    if path.suffix.lower() not in (".txt", ".jsonl"):
        return None
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        while block := handle.read(2**20):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def iter_texts(path: str | Path, text_field: str = "text", text_option: str = "--text-field") -> Iterator[str]:
    """Every text of the file, in order; see the module docstring for what a row is."""
    path = check_text_file(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            yield from _csv_texts(path, text_field, text_option)
            return
        if suffix == ".parquet":
            yield from _parquet_texts(path, text_field, text_option)
            return
        with path.open(encoding="utf-8", newline="") as handle:
            for line_no, line in enumerate(handle, start=1):
                if line_no == 1:
                    line = line.removeprefix(BOM)
                line = line.rstrip("\r\n")
                if suffix == ".txt":
                    yield line
                elif line.strip():
                    yield jsonl_text(path, line_no, line, text_field, text_option)
    except UnicodeDecodeError as exc:
        raise InputDataError(f"input file {str(path)!r} {_conversion_hint(path, exc.start)}") from exc


def _csv_texts(path: Path, column: str, option: str) -> Iterator[str]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise InputDataError(f"{path}: the file is empty; expected a header row naming the columns")
        check_header_column(path, header, column, option, delimiter)
        at = header.index(column)
        for row in reader:
            if not row:  # a blank line is no row
                continue
            if len(row) != len(header):
                raise InputDataError(f"{path}:{reader.line_num}: {len(row)} cells, the header has {len(header)}; fix "
                                     "the row so every output row matches an input row")
            if not row[at].strip():
                raise InputDataError(f"{path}:{reader.line_num}: empty {column!r}; give every row a text (or remove "
                                     "the row)")
            yield row[at]


def _parquet_texts(path: Path, column: str, option: str) -> Iterator[str]:
    pq = pyarrow_parquet(path)
    try:
        names = pq.read_schema(path).names
    except Exception as exc:  # pyarrow raises several unrelated types for damaged files
        raise InputDataError(f"cannot read {str(path)!r} as Parquet ({exc}); is the file complete?") from exc
    if column not in names:
        raise InputDataError(f"{path}: no column {column!r} among {names}; name the right one with {option}")
    row = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=4096, columns=[column]):
        for cell in batch.column(0).to_pylist():
            row += 1
            if cell is None or not str(cell).strip():
                raise InputDataError(f"{path}: row {row}: empty {column!r}; give every row a text (or remove the row)")
            yield str(cell)
