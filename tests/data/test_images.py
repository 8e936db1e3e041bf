"""Emoji image-text pairs: names with skin tones, group-preserving splits, pixels, and clear errors."""

import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from encoderlab.data import images as image_data
from encoderlab.data.images import emoji_root, image_paths, load_emoji, read_image, read_images, split_by_group
from encoderlab.errors import InputDataError

SUBSET = Path(__file__).parent / "emoji"


def test_emoji_subset_names_groups_and_categories():
    pairs = load_emoji(SUBSET)
    assert len(pairs) == 39 and len(set(pairs.groups)) == 29
    assert "grinning face" in pairs.texts
    toned = [t for t in pairs.texts if t.endswith(": medium-dark skin tone")]
    assert len(toned) == 2  # one per base emoji with skin variations
    assert len(pairs.category_names) == 9


def test_held_out_base_emoji_keep_all_their_variants():
    pairs = load_emoji(SUBSET)
    for seed in range(5):
        train, test = split_by_group(pairs, 0.3, seed)
        assert not set(train.groups) & set(test.groups)
        assert len(train) + len(test) == len(pairs)


def test_pixels_are_rgb_on_white_in_unit_range():
    pairs = load_emoji(SUBSET)
    x = read_images(pairs.paths[:4], 32, source_size=64)
    assert x.shape == (4, 3, 32, 32) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert np.allclose(x[:, :, 0, 0], 1.0)  # transparent corners became white


def test_unreadable_and_wrong_size_images_are_clear_errors(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    with pytest.raises(InputDataError, match="cannot read image .*broken.png"):
        read_image(broken, 32)
    with pytest.raises(InputDataError, match="does not exist"):
        read_image(tmp_path / "missing.png", 32)
    from PIL import Image

    Image.new("RGB", (48, 40), "red").save(tmp_path / "small.png")
    with pytest.raises(InputDataError, match=r"is 48x40 pixels, expected 64x64"):
        read_image(tmp_path / "small.png", 32, source_size=64)
    assert read_image(tmp_path / "small.png", 32).shape == (3, 32, 32)  # no source size: resized


def test_image_inputs_are_a_folder_or_a_csv_of_paths(tmp_path):
    folder = SUBSET / "img" / "google" / "64"
    assert len(image_paths(folder)) == 39
    csv_path = tmp_path / "list.csv"
    first = sorted(folder.iterdir())[0]
    csv_path.write_text(f"image,note\n{first}\n", encoding="utf-8")
    assert image_paths(csv_path) == [tmp_path / first]  # an absolute path stays itself
    csv_path.write_text("path\nx.png\n", encoding="utf-8")
    with pytest.raises(InputDataError, match="no 'image' column"):
        image_paths(csv_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputDataError, match="holds no images"):
        image_paths(tmp_path / "empty")


def test_a_folder_of_class_sub_folders_gives_every_image_in_path_order(tmp_path):
    """A user's photos sorted into class folders: predict / multimodal-encode on the folder found none."""
    from PIL import Image

    for name in ("dogs/b.png", "cats/z.jpg", "cats/a.png", "top.png", "cats/notes.txt", "dogs/deeper/c.png"):
        (tmp_path / "photos" / name).parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".txt"):
            (tmp_path / "photos" / name).write_text("not an image")
        else:
            Image.new("RGB", (8, 8), "red").save(tmp_path / "photos" / name)
    (tmp_path / "photos" / ".ipynb_checkpoints").mkdir()  # hidden: Jupyter's copies, macOS resource forks
    Image.new("RGB", (8, 8), "red").save(tmp_path / "photos" / ".ipynb_checkpoints" / "a-checkpoint.png")
    (tmp_path / "photos" / "cats" / "._a.png").write_bytes(b"\x00\x05\x16\x07 resource fork")
    found = [p.relative_to(tmp_path / "photos").as_posix() for p in image_paths(tmp_path / "photos")]
    assert found == ["cats/a.png", "cats/z.jpg", "dogs/b.png", "dogs/deeper/c.png", "top.png"]
    from encoderlab.data.array_files import read_image_folder

    (tmp_path / "photos" / "top.png").unlink()  # autoencode's reader: class sub-folders only
    x, labels, classes = read_image_folder(tmp_path / "photos")
    assert classes == ["cats", "dogs"] and len(x) == 4 and labels.tolist() == [0, 0, 1, 1]


def test_without_npm_the_error_says_how_to_get_the_files(tmp_path, monkeypatch):
    monkeypatch.setattr(image_data.shutil, "which", lambda name: None)
    with pytest.raises(InputDataError, match="npm is not installed.*npm pack emoji-datasource-google@16.0.0"):
        emoji_root(tmp_path)


def test_a_tarball_with_another_checksum_is_refused(tmp_path):
    package = tmp_path / "package"
    shutil.copytree(SUBSET, package)
    tarball = tmp_path / "emoji.tgz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(package, arcname="package")
    with pytest.raises(InputDataError, match="expected a80ac3e8"):
        image_data.extract_emoji_tarball(tarball, tmp_path / "root")
    assert not (tmp_path / "root").exists()


def test_the_bytes_of_an_image_read_like_the_file():
    path = sorted((SUBSET / "img" / "google" / "64").glob("*.png"))[0]
    np.testing.assert_array_equal(read_image(path.read_bytes(), 16, 64, name="input[0]"), read_image(path, 16, 64))
    with pytest.raises(InputDataError, match=r"'input\[1\]' is 64x64 pixels, expected 32x32"):
        read_image(path.read_bytes(), 16, 32, name="input[1]")
    with pytest.raises(InputDataError, match=r"cannot read image 'input\[3\]'"):
        read_image(b"\x89PNG truncated", 16, name="input[3]")
