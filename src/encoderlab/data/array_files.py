"""Reading a user's array files: .npy, .npz, .csv tables (numeric columns, a label column) and folders of
images. Each reader returns plain NumPy arrays; `data/arrays.py` turns them into train/val/test `ArrayData`."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import InputDataError
from .text_input import visible_files

ARRAY_SUFFIXES = (".npy", ".npz", ".csv")
LABEL_COLUMNS = ("label", "labels", "y", "target", "class", "anomaly")


@dataclass
class CsvTable:
    x: np.ndarray
    """(N, D) float32 features."""
    y: np.ndarray | None
    """(N,) float64 label column, or None."""
    columns: list[str]
    """The D feature column names, in order."""
    label_column: str | None
    class_names: list[str] | None
    """Text labels: y = i means class_names[i] (sorted); None for numeric labels."""


def _csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        raise InputDataError(f"{path}: expected a header row and at least one data row")
    return [h.strip() for h in rows[0]], rows[1:]


def _parse_numbers(path: Path, header: list[str], rows: list[list[str]], columns: list[int]) -> np.ndarray:
    """(N, len(columns)) float64 from the cells of `columns`; every bad cell is named by line and column."""
    values = np.empty((len(rows), len(columns)), dtype=np.float64)
    for r, row in enumerate(rows):
        line = r + 2
        if len(row) != len(header):
            raise InputDataError(f"{path}:{line}: {len(row)} fields but the header has {len(header)}")
        for j, c in enumerate(columns):
            cell = row[c].strip()
            name = header[c]
            try:
                values[r, j] = float(cell)
            except ValueError:
                if not cell:
                    fix = "a missing value; fill or drop rows with missing values first"
                else:
                    fix = (f"not a number; encode categorical columns as numbers first (if {name!r} holds the "
                           f"labels, set label_column={name})")
                raise InputDataError(f"{path}:{line}: column {name!r} holds {cell!r}, {fix}") from None
            if not np.isfinite(values[r, j]):
                raise InputDataError(f"{path}:{line}: column {name!r} holds {cell!r}; fill or drop rows with "
                                     "missing or infinite values first")
    return values


def read_csv_table(path: str | Path, label_column: str | None = None) -> CsvTable:
    """A numeric table with a header row; the label column is `label_column` or one named like a label."""
    path = Path(path)
    header, rows = _csv_rows(path)
    if label_column:
        if label_column not in header:
            raise InputDataError(f"{path}: no column {label_column!r} (columns: {header}); set label_column=")
        label_idx: int | None = header.index(label_column)
    else:
        found = [i for i, h in enumerate(header) if h.lower() in LABEL_COLUMNS]
        label_idx = found[0] if found else None
    if label_idx is None:
        return CsvTable(_parse_numbers(path, header, rows, list(range(len(header)))).astype(np.float32),
                        None, header, None, None)
    features = [i for i in range(len(header)) if i != label_idx]
    if not features:
        raise InputDataError(f"{path}: the only column is the label {header[label_idx]!r}; add feature columns")
    x = _parse_numbers(path, header, rows, features).astype(np.float32)
    y, classes = _parse_labels(path, header[label_idx], [row[label_idx].strip() for row in rows])
    return CsvTable(x, y, [header[i] for i in features], header[label_idx], classes)


def _parse_labels(path: Path, name: str, cells: list[str]) -> tuple[np.ndarray, list[str] | None]:
    """Numeric labels as they are; text labels ('cat', 'dog') as ids 0, 1, ... in sorted order, with the names."""
    for line, cell in enumerate(cells, start=2):
        if not cell:
            raise InputDataError(f"{path}:{line}: label column {name!r} is empty (a missing value); fill or drop "
                                 "rows without a label first")
    try:
        return np.array([float(c) for c in cells]), None
    except ValueError:
        classes = sorted(set(cells))
        ids = {c: i for i, c in enumerate(classes)}
        return np.array([ids[c] for c in cells], dtype=np.int64), classes


def read_csv_columns(path: str | Path, columns: list[str]) -> np.ndarray:
    """(N, len(columns)) float32: the named columns of a .csv, in that order; other columns are ignored."""
    path = Path(path)
    header, rows = _csv_rows(path)
    missing = [c for c in columns if c not in header]
    if missing:
        raise InputDataError(f"{path}: no column {', '.join(map(repr, missing))}; the model was trained on the "
                             f"columns {columns} (found {header})")
    return _parse_numbers(path, header, rows, [header.index(c) for c in columns]).astype(np.float32)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _grey_or_colour(source: Path | BinaryIO, name: str) -> Any:
    """One image file (a path or open bytes) as a PIL image in mode L (grey kinds) or RGB (the rest, alpha dropped)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(source) as img:
            img.load()
            return img.convert("L") if img.mode in ("1", "L", "LA", "I", "I;16", "F") else img.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise InputDataError(f"cannot read image {name}: {exc}") from exc


def read_image_bytes(data: bytes, name: str, image_size: int | None = None, channels: int | None = None) -> np.ndarray:
    """One image file's bytes (a PNG, JPEG, ...) -> (C, H, W) uint8, read as `read_image_folder` reads each file
    (grey or colour, `channels` forcing one, resized to `image_size` when given). `name` says which input it was."""
    import io

    from PIL import Image

    img = _grey_or_colour(io.BytesIO(data), name)
    if channels is not None:
        img = img.convert("L" if channels == 1 else "RGB")
    if image_size is not None:
        img = img.resize((image_size, image_size), Image.Resampling.BILINEAR)
    x = np.asarray(img, dtype=np.uint8)
    return x[None] if x.ndim == 2 else x.transpose(2, 0, 1)


def read_image_folder(path: str | Path, image_size: int | None = None, channels: int | None = None
                      ) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """(images (N, C, H, W) uint8, labels or None, class names or None) from a folder of image files, or one
    image file. A folder whose images sit in sub-folders is labelled by sub-folder (sorted names -> 0, 1, ...),
    like torchvision's ImageFolder. Greyscale images give C = 1, colour ones C = 3 (alpha dropped); a folder
    mixing both is read as colour. Every image must have the same size, unless `image_size` resizes each one
    to image_size x image_size pixels (bilinear; the aspect ratio is not kept). `channels` (1 or 3) reads every
    image as grey or colour whatever it is: what a trained model takes."""
    from PIL import Image

    path = Path(path)
    if path.is_file():
        files, labels, classes = [path], None, None
    else:
        files = visible_files(path, IMAGE_SUFFIXES)
        if not files:
            raise InputDataError(f"folder {str(path)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        nested = [f for f in files if f.parent != path]
        if nested and len(nested) != len(files):
            loose = next(f for f in files if f.parent == path)
            raise InputDataError(f"folder {str(path)!r} mixes images in class sub-folders with loose images such "
                                 f"as {loose.name!r}; put every image in a sub-folder (one per class) or none")
        classes = sorted({f.relative_to(path).parts[0] for f in nested}) or None
        labels = np.array([classes.index(f.relative_to(path).parts[0]) for f in files]) if classes else None
    images = [_grey_or_colour(f, repr(str(f))) for f in files]
    if channels is not None or any(img.mode == "RGB" for img in images):
        images = [img.convert("L" if channels == 1 else "RGB") for img in images]
    if image_size is not None:
        images = [img.resize((image_size, image_size), Image.Resampling.BILINEAR) for img in images]
    size = images[0].size
    for f, img in zip(files, images, strict=True):
        if img.size != size:
            raise InputDataError(f"{str(f)!r} is {img.size[0]}x{img.size[1]} pixels but {files[0].name!r} is "
                                 f"{size[0]}x{size[1]}; resize the images to one size first, or let the command "
                                 f"resize them as it reads them (autoencode: image_size=, e.g. image_size={size[1]})")
    x = np.stack([np.asarray(img, dtype=np.uint8) for img in images])  # (N, H, W) or (N, H, W, 3)
    return (x if x.ndim == 3 else x.transpose(0, 3, 1, 2)), labels, classes


def _xy(x: np.ndarray, y: np.ndarray | None) -> dict[str, np.ndarray]:
    """The arrays of a file with one sample array: x, and y when it has labels."""
    return {"x": x} if y is None else {"x": x, "y": y}


def read_array_file(path: str | Path, label_column: str | None = None, image_size: int | None = None,
                    channels: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of a user file: keys x (and y) for .npy/.csv, x_train/y_train/x_test/... for .npz; images
    (a file or a folder) resized to image_size x image_size pixels and read with `channels` if given."""
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir() or suffix in IMAGE_SUFFIXES:
        if not path.exists():
            raise InputDataError(f"input file {str(path)!r} does not exist; check the path")
        x, y, _ = read_image_folder(path, image_size, channels)
        return _xy(x, y)
    if suffix not in ARRAY_SUFFIXES:
        raise InputDataError(f"{str(path)!r} has suffix {suffix or '(none)'!r}; use one of "
                             f"{', '.join(ARRAY_SUFFIXES)}, an image file or a folder of images")
    if not path.is_file():
        raise InputDataError(f"input file {str(path)!r} does not exist; check the path")
    if suffix == ".csv":
        table = read_csv_table(path, label_column)
        return _xy(table.x, table.y)
    try:
        if suffix == ".npy":
            return {"x": np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (ValueError, OSError) as exc:
        raise InputDataError(f"cannot read {str(path)!r}: {exc}") from exc
    if "x" not in arrays and "x_train" not in arrays:
        if len(arrays) == 1:
            return {"x": next(iter(arrays.values()))}
        raise InputDataError(f"{path}: an .npz must hold x_train (and optionally y_train, x_val, y_val, x_test, "
                             f"y_test) or x (and y); found {sorted(arrays)}. Re-save it under those names, e.g. "
                             f"np.savez({path.name!r}, x=samples, y=labels)")
    return arrays


def read_samples(path: str | Path, label_column: str | None = None, image_size: int | None = None,
                 channels: int | None = None) -> np.ndarray:
    """The samples to encode from a user file: a .npy array, a .csv table (label column dropped), the `x` array
    (or only array) of an .npz, or images (resized to image_size x image_size, with `channels`, if given)."""
    arrays = read_array_file(path, label_column, image_size, channels)
    if "x" not in arrays:
        raise InputDataError(f"{path}: holds {sorted(arrays)}; save the samples to encode as a single array "
                             "or under the key x")
    return arrays["x"]
