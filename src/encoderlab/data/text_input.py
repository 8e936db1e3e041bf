"""Read a user's texts from a file: `.txt` (one text per line), `.jsonl` (one JSON object per line), a
`.csv` / `.tsv` table or a `.parquet` file (read with pyarrow: `pip install 'encoderlab[tables]'`).

Every problem names the file and line, so a user can fix their data instead of guessing, and the option
that fixes it as the user spells it in that command (`options`: `text_column=` in a config override,
`--text-field` on `encode`, ...). A UTF-8 byte-order mark (Excel and Notepad write one) is not part of the text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputDataError

TEXT_SUFFIXES = (".txt", ".jsonl", ".csv", ".tsv", ".parquet")
BOM = "\ufeff"
FINETUNE_OPTIONS = ("text_column=", "label_column=")
"""How a user names the text and label column/field, per command; the messages quote them."""


def json_array_hint(path: Path) -> str:
    """For a .json file: how to turn a JSON array of objects into the .jsonl every command reads."""
    if path.suffix.lower() != ".json":
        return ""
    return (f" (a .json array of objects becomes .jsonl with one object per line, e.g. "
            f"`jq -c '.[]' {path.name} > {path.stem}.jsonl`)")


def _conversion_hint(path: Path, byte: int) -> str:
    """How to convert a file that is not UTF-8: UTF-16 (Notepad's 'Unicode', Excel's 'Unicode Text') is
    recognised by its byte-order mark; anything else is most often Latin-1 / Windows-1252."""
    with path.open("rb") as handle:
        start = handle.read(2)
    source = "utf-16" if start in (b"\xff\xfe", b"\xfe\xff") else "latin1"
    what = "UTF-16 text" if source == "utf-16" else f"not UTF-8 text (byte {byte})"
    return f"is {what}; convert it to UTF-8, e.g. `iconv -f {source} -t utf-8 {path.name} > utf8-{path.name}`"


def _read_utf8(path: Path) -> str:
    if not path.exists():
        raise InputDataError(f"input file {str(path)!r} does not exist; check the path")
    if path.is_dir():
        raise InputDataError(f"input {str(path)!r} is a directory; pass a .txt or .jsonl file")
    try:
        return path.read_text(encoding="utf-8").removeprefix(BOM)
    except PermissionError as exc:
        raise InputDataError(f"input file {str(path)!r} is not readable (permission denied); "
                             "fix its permissions") from exc
    except UnicodeDecodeError as exc:
        raise InputDataError(f"input file {str(path)!r} {_conversion_hint(path, exc.start)}") from exc


def read_texts(path: str | Path, text_field: str = "text", text_option: str = "--text-field") -> list[str]:
    """`.txt`: every line is one text (blank lines are empty texts, so rows match line numbers).
    `.jsonl`: every non-blank line is an object whose `text_field` is a string (`text_option` is how the
    user names another field, quoted in the error). `.csv` / `.tsv` / `.parquet`: column `text_field` of every
    row; a row that cannot be read is an error, so output row i always belongs to input row i."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TEXT_SUFFIXES:
        raise InputDataError(f"input file {str(path)!r} has suffix {suffix or '(none)'!r}; "
                             f"use one of {', '.join(TEXT_SUFFIXES)}{json_array_hint(path)}")
    if suffix in (".csv", ".tsv", ".parquet"):
        reader = read_parquet_rows if suffix == ".parquet" else read_csv_rows
        texts, _, problems = reader(path, text_field, options=(text_option, text_option))
        if problems:
            raise InputDataError(f"{path}: {len(problems)} rows cannot be used, e.g. {problems[0]}; fix them so "
                                 "every output row matches an input row")
        return texts
    content = _read_utf8(path)
    if suffix == ".txt":
        return content.splitlines()
    return [jsonl_text(path, line_no, line, text_field, text_option)
            for line_no, line in enumerate(content.splitlines(), start=1) if line.strip()]


def jsonl_text(path: Path, line_no: int, line: str, field: str, option: str) -> str:
    """The string in `field` of one JSON line (`line_no` of `path`); anything else names the line and `option`."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputDataError(f"{path}:{line_no}: not valid JSON ({exc.msg}); each line must be one JSON "
                             "object") from exc
    if not isinstance(record, dict) or field not in record:
        keys = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise InputDataError(f"{path}:{line_no}: no {field!r} field (found {keys}); name the right field with {option}")
    if not isinstance(record[field], str):
        raise InputDataError(f"{path}:{line_no}: field {field!r} is {type(record[field]).__name__}, expected a string")
    return record[field]


def read_text_file(path: Path, encodings: tuple[str, ...] = ("utf-8",)) -> str:
    """The whole file, decoded with the first of `encodings` that works (the last one is reported)."""
    if not path.is_file():
        raise InputDataError(f"input file {str(path)!r} does not exist; check the path" if not path.exists() else
                             f"input {str(path)!r} is a directory; pass a file")
    data = path.read_bytes()
    for encoding in encodings:
        try:
            return data.decode(encoding).removeprefix(BOM)
        except UnicodeDecodeError as exc:
            error = exc
    raise InputDataError(f"{str(path)!r} {_conversion_hint(path, error.start)}")


def visible_files(directory: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The files under `directory` (sub-folders included) whose suffix is one of `suffixes`, sorted by their
    path; hidden ones are left out: a name starting with '.' in the path below `directory` (Jupyter's
    .ipynb_checkpoints/ copies, macOS's ._photo.jpg resource forks, .git/) is no document, image or recording."""
    return sorted(p for p in directory.rglob("*") if p.suffix.lower() in suffixes and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(directory).parts))


def read_text_folder(directory: str | Path) -> tuple[list[str], list[str] | None, list[Path]]:
    """Every `*.txt` under `directory` is one document. If all of them sit one level down, in class folders
    (`directory/<class>/*.txt`), the folder names are returned as labels; otherwise labels is None."""
    directory = Path(directory)
    files = visible_files(directory, (".txt",))
    if not files:
        raise InputDataError(f"folder {str(directory)!r} holds no .txt files; put one document per .txt file "
                             "in it (optionally in one sub-folder per class)")
    docs = [read_text_file(p, ("utf-8", "cp1252")) for p in files]
    depths = {len(p.relative_to(directory).parts) for p in files}
    labels = [p.parent.name for p in files] if depths == {2} else None
    return docs, labels, files


def check_header_column(path: Path, header: list[str], column: str, option: str, delimiter: str) -> None:
    """`column` is in a CSV's `header` exactly once; else an error naming the file and the fix (`option`)."""
    if column not in header:
        other = next((d for d in (";", "\t", "|", ",") if d != delimiter and len(header) == 1 and d in header[0]),
                     None)
        if other is not None:  # e.g. a European Excel export: 'review;stars' is one cell
            raise InputDataError(f"{path}:1: the header {header} is one cell: the file is separated by "
                                 f"{other!r}, not {delimiter!r}; save it comma-separated as .csv or "
                                 "tab-separated as .tsv")
        raise InputDataError(f"{path}:1: no column {column!r} in the header {header}; name the right one with {option}")
    if header.count(column) > 1:  # which one was meant? refuse to guess
        where = [i + 1 for i, name in enumerate(header) if name == column]
        raise InputDataError(f"{path}:1: the header names {column!r} {len(where)} times (columns "
                             f"{', '.join(map(str, where))}); rename the duplicates so that one column is {column!r}")


def read_csv_rows(path: str | Path, text_column: str, label_column: str | None = None,
                  encoding: str = "utf-8", options: tuple[str, str] = FINETUNE_OPTIONS,
                  ) -> tuple[list[str], list[str] | None, list[str]]:
    """(texts, labels or None, problems) from a .csv/.tsv with a header row; `options` name the text and
    label column as the user sets them (for the error when one is missing).

    Blank lines are skipped. A row with the wrong number of cells or an empty text/label is not used, and is
    described in `problems` as `file:line: what is wrong`, so the caller can report it instead of dropping
    it silently.
    """
    import csv

    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"input file {str(path)!r} does not exist; check the path")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    texts: list[str] = []
    labels: list[str] = []
    problems: list[str] = []
    try:
        handle = path.open(encoding="utf-8-sig" if encoding == "utf-8" else encoding, newline="")
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise InputDataError(f"{path}: the file is empty; expected a header row naming the columns")
        for column, option in ((text_column, options[0]), (label_column, options[1])):
            if column is not None:
                check_header_column(path, header, column, option, delimiter)
        text_at = header.index(text_column)
        label_at = header.index(label_column) if label_column is not None else None
        for row in reader:
            line_no = reader.line_num
            if not row:  # a blank line is no row (as in pandas and spreadsheets)
                continue
            if len(row) != len(header):
                problems.append(f"{path}:{line_no}: {len(row)} cells, the header has {len(header)}")
                continue
            text = row[text_at]
            if not text.strip():
                problems.append(f"{path}:{line_no}: empty {text_column!r}")
                continue
            if label_at is not None:
                if not row[label_at].strip():
                    problems.append(f"{path}:{line_no}: empty {label_column!r}")
                    continue
                labels.append(row[label_at].strip())
            texts.append(text)
        handle.close()
    except UnicodeDecodeError as exc:
        raise InputDataError(f"input file {str(path)!r} {_conversion_hint(path, exc.start)}") from exc
    return texts, (labels if label_column is not None else None), problems


def pyarrow_parquet(path: Path) -> Any:
    """The pyarrow.parquet module, or an error saying how to install it to read `path`."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputDataError(f"reading {str(path)!r} needs pyarrow; install it with: pip install pyarrow "
                             "(or pip install 'encoderlab[tables]'), or convert the file to CSV") from None
    return pq


def read_parquet_table(path: str | Path, columns: list[str] | None = None,
                       options: dict[str, str] | None = None) -> dict[str, list[Any]]:
    """{column: cells} of a .parquet file (all columns, or `columns`), read with pyarrow; missing cells are None.
    A column that is not there is an error listing the file's columns and, from `options` ({column: how the
    user names it}), the option that picks another."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"input file {str(path)!r} does not exist; check the path" if not path.exists() else
                             f"input {str(path)!r} is a directory; pass a file")
    pq = pyarrow_parquet(path)
    try:
        names = pq.read_schema(path).names
        missing = [c for c in columns or [] if c not in names]
        if not missing:
            table = pq.read_table(path, columns=columns)
    except Exception as exc:  # pyarrow raises several unrelated types for damaged files
        raise InputDataError(f"cannot read {str(path)!r} as Parquet ({exc}); is the file complete?") from exc
    if missing:
        option = (options or {}).get(missing[0])
        raise InputDataError(f"{path}: no column {missing[0]!r} among {names}"
                             + (f"; name the right one with {option}" if option else ""))
    return {name: column for name, column in table.to_pydict().items() if not name.startswith("__index_level")}


def _cell_text(cell: Any) -> str:
    """A Parquet cell as text: 3.0 and 3 are the label '3'; None and NaN are empty."""
    if cell is None or (isinstance(cell, float) and cell != cell):
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell)


def read_parquet_rows(path: str | Path, text_column: str, label_column: str | None = None,
                      options: tuple[str, str] = FINETUNE_OPTIONS) -> tuple[list[str], list[str] | None, list[str]]:
    """`read_csv_rows` for a .parquet file: (texts, labels or None, problems), a row with an empty text or
    label described in `problems` as `file: row N: what is wrong` (N counts data rows from 1)."""
    wanted = {text_column: options[0]} | ({label_column: options[1]} if label_column is not None else {})
    table = read_parquet_table(path, list(wanted), wanted)
    texts: list[str] = []
    labels: list[str] = []
    problems: list[str] = []
    for i, cell in enumerate(table[text_column]):
        text = _cell_text(cell)
        if not text.strip():
            problems.append(f"{path}: row {i + 1}: empty {text_column!r}")
            continue
        if label_column is not None:
            label = _cell_text(table[label_column][i]).strip()
            if not label:
                problems.append(f"{path}: row {i + 1}: empty {label_column!r}")
                continue
            labels.append(label)
        texts.append(text)
    return texts, (labels if label_column is not None else None), problems


def jsonl_lines(path: str | Path, text: str | None = None) -> Iterator[tuple[int, Any, str]]:
    """(line number, parsed value, the line) for every non-blank line of a .jsonl file (`text`: its contents,
    when the caller has read them already); a line that is not JSON is an error naming file and line."""
    path = Path(path)
    for line_no, line in enumerate((_read_utf8(path) if text is None else text).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield line_no, json.loads(line), line
        except json.JSONDecodeError as exc:
            raise InputDataError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from exc


def read_jsonl_records(path: str | Path, text_field: str = "text", label_field: str | None = None,
                       options: tuple[str, str] = FINETUNE_OPTIONS) -> tuple[list[str], list[str] | None]:
    """Texts (and labels, as strings) of a .jsonl file; every bad line is an error naming file and line."""
    path = Path(path)
    texts = read_texts(path, text_field=text_field, text_option=options[0])
    if label_field is None:  # unlabelled text (pretraining): an empty document is simply no document
        return texts, None
    labels = []
    for line_no, line in enumerate(_read_utf8(path).splitlines(), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        if not record[text_field].strip():  # as in a .csv: a labelled row needs a text
            raise InputDataError(f"{path}:{line_no}: the {text_field!r} text is empty; every labelled line needs one")
        if label_field not in record:
            raise InputDataError(f"{path}:{line_no}: no {label_field!r} field (found {sorted(record)}); every line "
                                 f"needs a label: name the right field with {options[1]}")
        if isinstance(record[label_field], list | dict):
            kind = type(record[label_field]).__name__
            raise InputDataError(f"{path}:{line_no}: the {label_field!r} label is a {kind}; each text takes one "
                                 "label (multi-label classification is not supported)")
        if record[label_field] is None or str(record[label_field]).strip() == "":
            raise InputDataError(f"{path}:{line_no}: the {label_field!r} label is empty; every line needs one")
        labels.append(str(record[label_field]).strip())
    return texts, labels
