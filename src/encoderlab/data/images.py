"""Images paired with text: the emoji set (npm `emoji-datasource-google@16.0.0`) and a user's folder / CSV.

    root = emoji_root()                        # fetched once with `npm pack` into the cache, then reused
    pairs = load_emoji(root)                   # ImageTextPairs: paths, names, base-emoji groups, categories
    train, test = split_by_group(pairs, 0.15, seed=0)   # held-out base emoji keep all their skin tones
    pixels = read_images(pairs.paths, size=32) # (N, 3, 32, 32) float32 in [0, 1], on white
    paths = image_paths("photos/")             # a folder of images, or a CSV with an `image` column

The emoji set: `img/google/64/` holds 3,786 PNG images of 64x64 (1,911 base emoji plus their skin-tone
variants) and `emoji.json` each one's name, category (10) and subcategory. Images are Apache-2.0 (Google
Noto Emoji), the data MIT (iamcal/emoji-data). Nothing is fetched at import: `emoji_root()` runs `npm pack`
on first use (where npm exists; elsewhere a clear error says how to place the files by hand), checks the
tarball's sha1 (the one the npm registry publishes) and extracts only emoji.json, LICENSE and the 64 px
images into the cache (ENCODERLAB_CACHE, default ~/.cache/encoderlab).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputDataError
from .text_input import visible_files

EMOJI_PACKAGE = "emoji-datasource-google@16.0.0"
EMOJI_TARBALL = "emoji-datasource-google-16.0.0.tgz"
EMOJI_SHA1 = "a80ac3e8106cbd4d8648ce758aa099e8827b6157"
EMOJI_IMAGE_DIR = "img/google/64"
EMOJI_SIZE = 64
SKIN_TONES = {"1F3FB": "light skin tone", "1F3FC": "medium-light skin tone", "1F3FD": "medium skin tone",
              "1F3FE": "medium-dark skin tone", "1F3FF": "dark skin tone"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def cache_dir() -> Path:
    return Path(os.environ.get("ENCODERLAB_CACHE", Path.home() / ".cache" / "encoderlab")).expanduser()


def emoji_root(cache: Path | None = None) -> Path:
    """The folder holding emoji.json and img/google/64/, fetched with `npm pack` on first use."""
    root = (cache or cache_dir()) / "emoji-datasource-google-16.0.0"
    if (root / "emoji.json").is_file() and (root / EMOJI_IMAGE_DIR).is_dir():
        return root
    npm = shutil.which("npm")
    if npm is None:
        raise InputDataError(f"the emoji images come from the npm package {EMOJI_PACKAGE}, and npm is not installed. "
                             f"Install Node.js/npm, or on a machine with npm run `npm pack {EMOJI_PACKAGE}` and "
                             f"extract package/emoji.json and package/{EMOJI_IMAGE_DIR}/ into {root}/")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([npm, "pack", EMOJI_PACKAGE, "--silent"], cwd=tmp, capture_output=True, text=True)
        tarball = Path(tmp) / EMOJI_TARBALL
        if done.returncode != 0 or not tarball.is_file():
            raise InputDataError(f"`npm pack {EMOJI_PACKAGE}` failed ({done.stderr.strip()[-300:]}); check the "
                                 "network access to the npm registry, or place the files by hand in " + str(root))
        extract_emoji_tarball(tarball, root)
    return root


def extract_emoji_tarball(tarball: Path, root: Path) -> None:
    """Check the tarball's sha1, extract emoji.json, LICENSE and the 64 px images into `root` (atomically)."""
    digest = hashlib.sha1(tarball.read_bytes()).hexdigest()
    if digest != EMOJI_SHA1:
        raise InputDataError(f"{tarball.name} has sha1 {digest}, expected {EMOJI_SHA1}: another version or a "
                             "damaged download; delete it and fetch again")
    staging = root.with_name(root.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    wanted = ("package/emoji.json", "package/LICENSE", f"package/{EMOJI_IMAGE_DIR}/")
    with tarfile.open(tarball, "r:gz") as archive:
        members = [m for m in archive.getmembers() if m.isfile() and m.name.startswith(wanted)]
        archive.extractall(staging, members=members, filter="data")
    shutil.rmtree(root, ignore_errors=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    (staging / "package").rename(root)
    shutil.rmtree(staging, ignore_errors=True)


@dataclass
class ImageTextPairs:
    paths: list[Path]
    texts: list[str]
    groups: list[int]
    """Pairs with the same group are one base emoji and its variants: a split keeps them together."""
    categories: list[str]

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: Sequence[int]) -> ImageTextPairs:
        idx = list(indices)
        return ImageTextPairs([self.paths[i] for i in idx], [self.texts[i] for i in idx],
                              [self.groups[i] for i in idx], [self.categories[i] for i in idx])

    @property
    def category_names(self) -> list[str]:
        return sorted(set(self.categories))


def load_emoji(root: Path) -> ImageTextPairs:
    """Every emoji image with its name ("grinning face", "waving hand: medium skin tone"), base group and
    category. Images missing from the folder are skipped."""
    try:
        entries = json.loads((root / "emoji.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputDataError(f"cannot read {root / 'emoji.json'} ({exc}); delete {root} to fetch it again") from exc
    images = root / EMOJI_IMAGE_DIR
    pairs = ImageTextPairs([], [], [], [])
    for group, entry in enumerate(sorted(entries, key=lambda e: e["sort_order"])):
        name = entry["name"].lower()
        variants = [(entry["image"], name)]
        for tones, variant in (entry.get("skin_variations") or {}).items():
            tone_names = ", ".join(SKIN_TONES.get(t.upper(), t) for t in tones.split("-"))
            variants.append((variant["image"], f"{name}: {tone_names}"))
        for image, text in variants:
            if (images / image).is_file():
                pairs.paths.append(images / image)
                pairs.texts.append(text)
                pairs.groups.append(group)
                pairs.categories.append(entry["category"])
    if not pairs.paths:
        raise InputDataError(f"no emoji images found in {images}; delete {root} to fetch it again")
    return pairs


def emoji_subcategories(root: Path) -> dict[str, list[str]]:
    """Each emoji.json category -> its subcategory names as words ("face-smiling" -> "face smiling"), in
    order of first appearance: the label taxonomy, read without any image (zero-shot prompt ensembles)."""
    try:
        entries = json.loads((root / "emoji.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputDataError(f"cannot read {root / 'emoji.json'} ({exc}); delete {root} to fetch it again") from exc
    out: dict[str, list[str]] = {}
    for entry in sorted(entries, key=lambda e: e["sort_order"]):
        names = out.setdefault(entry["category"], [])
        words = entry.get("subcategory", "").replace("-", " ").strip()
        if words and words not in names:
            names.append(words)
    return out


def split_by_group(pairs: ImageTextPairs, test_fraction: float, seed: int) -> tuple[ImageTextPairs, ImageTextPairs]:
    """A seeded share of the groups (base emoji) and all their pairs go to the test side."""
    if not 0.0 < test_fraction < 1.0:
        raise InputDataError(f"test_fraction={test_fraction} must be between 0 and 1")
    groups = np.array(sorted(set(pairs.groups)))
    held = set(np.random.default_rng(seed).permutation(groups)[:max(1, round(len(groups) * test_fraction))].tolist())
    test = [i for i, g in enumerate(pairs.groups) if g in held]
    train = [i for i, g in enumerate(pairs.groups) if g not in held]
    return pairs.subset(train), pairs.subset(test)


# ----------------------------------------------------------------------------------------------- pixels
def read_image(path: str | Path | bytes, size: int, source_size: int | None = None, name: str | None = None
               ) -> np.ndarray:
    """One image (a path, or the bytes of an image file, named `name` in errors) -> (3, size, size) float32 in
    [0, 1]; transparency is composited onto white. With `source_size`, an image of another size is an error
    (a wrong file), not silently resized."""
    import io

    from PIL import Image, UnidentifiedImageError

    source = io.BytesIO(path) if isinstance(path, bytes) else Path(path)
    path = (name or "image bytes") if isinstance(path, bytes) else Path(path)
    try:
        with Image.open(source) as image:
            if source_size is not None and image.size != (source_size, source_size):  # checked before decoding
                raise InputDataError(f"{str(path)!r} is {image.size[0]}x{image.size[1]} pixels, expected "
                                     f"{source_size}x{source_size}; resize it first (the model was trained on "
                                     f"{source_size}x{source_size} images)")
            image.load()
            rgba = image.convert("RGBA")
    except (FileNotFoundError, IsADirectoryError):
        raise InputDataError(f"image {str(path)!r} does not exist") from None
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise InputDataError(f"cannot read image {str(path)!r} ({exc}); is it a complete PNG/JPEG file?") from None
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(white, rgba).convert("RGB")
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BOX)  # area averaging: no aliasing when shrinking
    return (np.asarray(rgb, dtype=np.float32) / 255.0).transpose(2, 0, 1)  # (3, H, W)


def read_images(paths: Sequence[str | Path], size: int, source_size: int | None = None) -> np.ndarray:
    """(N, 3, size, size) float32."""
    out = np.empty((len(paths), 3, size, size), dtype=np.float32)
    for i, path in enumerate(paths):
        out[i] = read_image(path, size, source_size)
    return out


def image_paths(source: str | Path, column: str = "image") -> list[Path]:
    """The images of a folder, its sub-folders included (files with an image suffix, sorted by their path
    in the folder), or of a CSV's `column` (paths relative to the CSV's folder)."""
    source = Path(source)
    if source.is_dir():
        # sub-folders too: a user's photos are often sorted into class folders (as `autoencode data=` reads them)
        paths = visible_files(source, IMAGE_SUFFIXES)
        if not paths:
            raise InputDataError(f"{str(source)!r} holds no images ({', '.join(IMAGE_SUFFIXES)}), in it or in "
                                 "its sub-folders")
        return paths
    if source.suffix.lower() == ".csv" and source.is_file():
        with source.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if column not in (reader.fieldnames or []):
                raise InputDataError(f"{str(source)!r} has no {column!r} column (it has {reader.fieldnames}); name "
                                     "the column of image paths 'image'")
            paths = [source.parent / row[column] for row in reader if row[column]]
        if not paths:
            raise InputDataError(f"{str(source)!r} lists no images")
        return paths
    raise InputDataError(f"{str(source)!r} is neither a folder of images nor a .csv of image paths")
