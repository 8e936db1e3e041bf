"""Read a user's texts from a file: `.txt` (one text per line) or `.jsonl` (one JSON object per line).

Every problem names the file and line, so a user can fix their data instead of guessing.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputDataError

TEXT_SUFFIXES = (".txt", ".jsonl")


def _read_utf8(path: Path) -> str:
    if not path.exists():
        raise InputDataError(f"input file {str(path)!r} does not exist; check the path")
    if path.is_dir():
        raise InputDataError(f"input {str(path)!r} is a directory; pass a .txt or .jsonl file")
    try:
        return path.read_text(encoding="utf-8")
    except PermissionError as exc:
        raise InputDataError(f"input file {str(path)!r} is not readable (permission denied); "
                             "fix its permissions") from exc
    except UnicodeDecodeError as exc:
        raise InputDataError(f"input file {str(path)!r} is not UTF-8 text (byte {exc.start}); "
                             "convert it, e.g. `iconv -f latin1 -t utf-8`") from exc


def read_texts(path: str | Path, text_field: str = "text") -> list[str]:
    """`.txt`: every line is one text (blank lines are empty texts, so rows match line numbers).
    `.jsonl`: every non-blank line is an object whose `text_field` is a string."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TEXT_SUFFIXES:
        raise InputDataError(f"input file {str(path)!r} has suffix {suffix or '(none)'!r}; "
                             f"use one of {', '.join(TEXT_SUFFIXES)}")
    content = _read_utf8(path)
    if suffix == ".txt":
        return content.splitlines()
    texts = []
    for line_no, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputDataError(f"{path}:{line_no}: not valid JSON ({exc.msg}); each line must be one "
                                 "JSON object") from exc
        if not isinstance(record, dict) or text_field not in record:
            keys = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise InputDataError(f"{path}:{line_no}: no {text_field!r} field (found {keys}); "
                                 "name the right field with --text-field")
        if not isinstance(record[text_field], str):
            raise InputDataError(f"{path}:{line_no}: field {text_field!r} is "
                                 f"{type(record[text_field]).__name__}, expected a string")
        texts.append(record[text_field])
    return texts
