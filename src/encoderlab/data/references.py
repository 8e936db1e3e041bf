"""How a run names its data: a catalog name as is, a file as its absolute path.

A saved model records its training data this way, so `evaluate` recognises that data (and finds its held-out
split) whichever directory it is run from and however the path is spelled.
"""

from __future__ import annotations

from pathlib import Path

from .catalog import CATALOG


def is_catalog_name(name: str) -> bool:
    """A catalog dataset's name (and not a file or folder of that name in the working directory)."""
    return name in CATALOG and not Path(name).exists()


def data_reference(name_or_path: str) -> str:
    """A catalog name as is, a file as its absolute path; '' stays ''."""
    if not name_or_path or is_catalog_name(name_or_path):
        return name_or_path
    return str(Path(name_or_path).expanduser().resolve())


def same_data(a: str | None, b: str | None) -> bool:
    """Whether two data= values name the same catalog dataset or file (`reviews.csv` == `./reviews.csv`)."""
    return bool(a) and bool(b) and data_reference(str(a)) == data_reference(str(b))
