"""Array datasets: the packaged MNIST and Shuttle files, user .npy/.npz/.csv files, and their bad inputs."""

import collections
import io
import pickle

import numpy as np
import pytest

from encoderlab.data import array_files, arrays
from encoderlab.data.arrays import binarize, load_arrays, load_user_arrays, one_class
from encoderlab.errors import ConfigError, InputDataError


@pytest.fixture(scope="module")
def mnist():
    return arrays.load_mnist()


def test_mnist_is_the_classic_split(mnist):
    assert (len(mnist.train), len(mnist.val), len(mnist.test)) == (50_000, 10_000, 10_000)
    assert mnist.sample_shape == (1, 28, 28) and mnist.train.x.dtype == np.float32
    assert 0.0 <= mnist.test.x.min() and mnist.test.x.max() <= 1.0
    assert sorted(np.unique(mnist.test.y)) == list(range(10))
    # a digit is mostly background: ~19% of pixels are ink in MNIST
    assert 0.1 < (mnist.train.x[:1000] > 0.5).mean() < 0.25


def test_pickle_loader_refuses_anything_but_numpy():
    # Any global other than numpy's array reconstruction is refused (here a harmless one, by name).
    payload = pickle.dumps(collections.OrderedDict(a=1), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="only NumPy arrays"):
        arrays._NumpyOnlyUnpickler(io.BytesIO(payload)).load()
    ok = pickle.dumps((np.arange(3, dtype=np.float32), np.array([1, 2])), protocol=2)
    x, y = arrays._NumpyOnlyUnpickler(io.BytesIO(ok)).load()
    np.testing.assert_array_equal(x, [0, 1, 2])


def test_shuttle_split_is_stratified_and_standardised():
    data = arrays.load_shuttle()
    assert data.sample_shape == (9,) and data.labels == "anomaly"
    assert len(data.train) + len(data.val) + len(data.test) == 49_097
    for split in (data.train, data.val, data.test):
        assert abs(split.y.mean() - 3511 / 49_097) < 0.002  # ~7% anomalies in every split
    np.testing.assert_allclose(data.train.x.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(data.train.x.std(0), 1, atol=1e-3)


def test_one_class_refits_tabular_scaling_on_normal_rows():
    data = one_class(arrays.load_shuttle(), normal=0)
    assert (data.train.y == 0).all() and len(data.train) == 27_352
    np.testing.assert_allclose(data.train.x.mean(0), 0, atol=1e-4)
    assert 0.06 < data.test.y.mean() < 0.08


def test_one_class_images_keep_pixels(mnist):
    data = one_class(mnist, normal=3)
    assert len(data.train) == (mnist.train.y == 3).sum()
    np.testing.assert_array_equal(data.test.y, (mnist.test.y != 3).astype(int))
    with pytest.raises(InputDataError, match="normal_class=11"):
        one_class(mnist, normal=11)


def test_uint8_images_npy_scaled_and_channel_added(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(50, 8, 6), dtype=np.uint8)
    np.save(tmp_path / "img.npy", images)
    data = load_arrays(str(tmp_path / "img.npy"))
    assert data.kind == "image" and data.sample_shape == (1, 8, 6)
    assert data.scaling.kind == "divide" and data.train.x.max() <= 1.0
    assert len(data.train) + len(data.val) + len(data.test) == 50
    np.testing.assert_allclose(data.scaling.invert(data.train.x) % 1, 0, atol=1e-3)  # round-trips to integers


def test_npz_with_given_splits_and_float_images_outside_unit_range(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "d.npz", x_train=rng.normal(size=(40, 3, 5, 5)), y_train=rng.integers(0, 2, 40),
             x_test=rng.normal(size=(10, 3, 5, 5)), y_test=rng.integers(0, 2, 10))
    data = load_arrays(str(tmp_path / "d.npz"))
    assert len(data.test) == 10 and len(data.train) + len(data.val) == 40
    assert data.scaling.kind == "minmax" and data.train.x.min() >= 0 and data.train.x.max() <= 1


def test_csv_with_label_column(tmp_path):
    rows = ["a,b,label"] + [f"{i},{2 * i + 1},{i % 2}" for i in range(30)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    data = load_arrays(str(tmp_path / "t.csv"))
    assert data.kind == "tabular" and data.sample_shape == (2,) and data.labels == "class"
    assert set(np.unique(data.train.y)) == {0, 1}
    np.testing.assert_allclose(data.train.x.mean(0), 0, atol=1e-5)


@pytest.mark.parametrize("array, message", [
    (np.array([[0.1, np.nan], [0.2, 0.3]] * 10), "NaN/inf"),
    (np.arange(10.0), "rank 1"),
    (np.zeros((2, 2, 2, 2, 2)), "rank 5"),
    (np.zeros((10, 28, 28, 3)), "channels-last"),
    (np.array([["a", "b"]] * 5), "not numeric"),
])
def test_bad_arrays_are_named(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(InputDataError, match=message) as info:
        load_user_arrays(tmp_path / "bad.npy")
    assert "bad.npy" in str(info.value)


def test_mismatched_train_test_shapes(tmp_path):
    np.savez(tmp_path / "m.npz", x_train=np.zeros((20, 4)), x_test=np.zeros((5, 5)))
    with pytest.raises(InputDataError, match=r"x_test.*shape \(5,\).*\(4,\)"):
        load_user_arrays(tmp_path / "m.npz")


def test_bad_csv_cell_names_row_and_column(tmp_path):
    (tmp_path / "t.csv").write_text("a,b\n1,2\n3,oops\n")
    with pytest.raises(InputDataError, match=r"t.csv:3: column 'b' holds 'oops'"):
        load_user_arrays(tmp_path / "t.csv")


def test_unknown_data_spec():
    with pytest.raises(InputDataError, match="neither a packaged dataset"):
        load_arrays("cifar")


def test_binarize_is_fixed_and_unbiased(mnist):
    x = mnist.test.x[:500]
    a, b = binarize(x, 7), binarize(x, 7)
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0.0, 1.0}
    assert abs(a.mean() - x.mean()) < 0.005


# ----------------------------------------------------------------------------------------------- what users bring
@pytest.mark.parametrize("cells, message", [
    ("3,", r"t.csv:3: column 'b' holds '', a missing value; fill or drop rows with missing values"),
    ("3,nan", r"t.csv:3: column 'b' holds 'nan'; fill or drop rows with missing or infinite values"),
    ("3,red", r"t.csv:3: column 'b' holds 'red', not a number; .*set label_column=b"),
])
def test_missing_and_text_cells_say_what_to_do(tmp_path, cells, message):
    (tmp_path / "t.csv").write_text(f"a,b\n1,2\n{cells}\n")
    with pytest.raises(InputDataError, match=message) as info:
        load_user_arrays(tmp_path / "t.csv")
    assert str(info.value).count("t.csv") == 1  # one prefix, not "cannot read 't.csv': t.csv: ..."


def test_csv_text_labels_become_class_ids_and_columns_are_kept(tmp_path):
    rows = ["x1,species,x2"] + [f"{i},{['setosa', 'virginica', 'ab'][i % 3]},{i * i}" for i in range(30)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    data = load_user_arrays(tmp_path / "t.csv", label_column="species")
    assert data.class_names == ["ab", "setosa", "virginica"] and data.sample_shape == (2,)
    assert data.columns == ["x1", "x2"] and data.label_column == "species"
    row_index = data.scaling.invert(data.train.x)[:, 0].round().astype(int)  # x1 = the row number
    names = np.array(["setosa", "virginica", "ab"])[row_index % 3]
    np.testing.assert_array_equal(np.array(data.class_names)[data.train.y], names)
    assert data.info()["class_names"] == ["ab", "setosa", "virginica"] and data.info()["columns"] == ["x1", "x2"]
    with pytest.raises(InputDataError, match=r"normal_class=7 .*\[0, 1, 2\] = \['ab', 'setosa', 'virginica'\]"):
        one_class(data, 7)
    anomaly = one_class(data, 1)
    assert anomaly.columns == ["x1", "x2"] and anomaly.class_names == data.class_names


def test_normal_class_by_name_for_text_labels(tmp_path):
    """A user's CSV labels rows 'ok' / 'bad': normal_class=ok trains on the 'ok' rows (before, normal_class had
    to be the id the sorted names get, 1 here, which no message told the user)."""
    from encoderlab.config import load_config
    from encoderlab.tasks.autoencode import AutoencodeConfig

    rows = ["temp,status,vib"] + [f"{i},{'bad' if i % 5 == 0 else 'ok'},{i % 7}" for i in range(60)]
    (tmp_path / "s.csv").write_text("\n".join(rows) + "\n")
    data = load_user_arrays(tmp_path / "s.csv", label_column="status")
    by_name, by_id = one_class(data, "ok"), one_class(data, 1)
    np.testing.assert_array_equal(by_name.train.x, by_id.train.x)
    np.testing.assert_array_equal(by_name.test.y, by_id.test.y)
    temps = by_name.scaling.invert(by_name.train.x)[:, 0].round().astype(int)
    assert len(temps) > 0 and (temps % 5 != 0).all()  # only 'ok' rows are trained on
    with pytest.raises(InputDataError, match=r"normal_class='fine' is not a label of the data; give one of "
                                             r"\['bad', 'ok'\]"):
        one_class(data, "fine")
    assert load_config(AutoencodeConfig, None, ["normal_class=ok"]).normal_class == "ok"
    assert load_config(AutoencodeConfig, None, ["normal_class=3"]).normal_class == 3


def test_npz_with_other_key_names_says_how_to_resave(tmp_path):
    np.savez(tmp_path / "f.npz", features=np.zeros((20, 3)), labels=np.zeros(20))
    with pytest.raises(InputDataError, match=r"found \['features', 'labels'\]\. Re-save .*np\.savez\('f\.npz', x="):
        load_user_arrays(tmp_path / "f.npz")


@pytest.mark.parametrize("n, sizes", [(5, (3, 1, 1)), (3, (1, 1, 1)), (20, (16, 2, 2))])
def test_tiny_files_still_get_a_validation_and_a_test_sample(tmp_path, n, sizes):
    np.save(tmp_path / "t.npy", np.random.default_rng(0).normal(size=(n, 4)))
    data = load_user_arrays(tmp_path / "t.npy")
    assert (len(data.train), len(data.val), len(data.test)) == sizes
    all_rows = np.concatenate([data.train.x, data.val.x, data.test.x])
    assert len(np.unique(all_rows, axis=0)) == n  # a partition: no sample in two splits


def test_two_samples_are_too_few(tmp_path):
    np.save(tmp_path / "t.npy", np.zeros((2, 4)))
    with pytest.raises(InputDataError, match="2 samples are too few .* at least 3"):
        load_user_arrays(tmp_path / "t.npy")


def _save_images(folder, n, shape, seed=0):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{i:02d}.png")
    return images


def test_image_folder_with_class_subfolders(tmp_path):
    cats = _save_images(tmp_path / "pets" / "cats", 10, (6, 5, 3))
    _save_images(tmp_path / "pets" / "dogs", 10, (6, 5, 3), seed=1)
    data = load_arrays(str(tmp_path / "pets"))
    assert data.kind == "image" and data.sample_shape == (3, 6, 5) and data.scaling.kind == "divide"
    assert data.class_names == ["cats", "dogs"] and sorted(np.unique(data.train.y)) == [0, 1]
    x, y, names = array_files.read_image_folder(tmp_path / "pets")
    np.testing.assert_array_equal(x[:10], cats.transpose(0, 3, 1, 2))  # pixels exact, channels first
    assert y.tolist() == [0] * 10 + [1] * 10 and names == ["cats", "dogs"]
    assert array_files.read_samples(tmp_path / "pets" / "dogs" / "03.png").shape == (1, 3, 6, 5)


def test_flat_grey_image_folder_and_its_errors(tmp_path):
    grey = _save_images(tmp_path / "g", 12, (7, 9))
    x = array_files.read_samples(tmp_path / "g")
    assert x.shape == (12, 7, 9) and x.dtype == np.uint8
    np.testing.assert_array_equal(x, grey)
    assert load_user_arrays(tmp_path / "g").sample_shape == (1, 7, 9)
    _save_images(tmp_path / "g" / "sub", 1, (7, 9))
    with pytest.raises(InputDataError, match="mixes images in class sub-folders with loose images"):
        array_files.read_samples(tmp_path / "g")
    _save_images(tmp_path / "h", 2, (7, 9))
    _save_images(tmp_path / "h" / "x", 1, (8, 9))
    (tmp_path / "h" / "00.png").unlink(), (tmp_path / "h" / "01.png").unlink()
    _save_images(tmp_path / "h" / "y", 1, (7, 9))
    with pytest.raises(InputDataError, match=r"is 9x7 pixels but .* is 9x8; resize the images to one size"):
        array_files.read_samples(tmp_path / "h")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputDataError, match="holds no images"):
        load_arrays(str(tmp_path / "empty"))


def test_a_rare_class_reaches_validation_and_test():
    y = np.array([0] * 100 + [1] * 4)  # 10% of 4 rounds to 0
    train, val, test = arrays.stratified_split(y, len(y), (0.1, 0.1))
    assert (y[val] == 1).sum() == 1 and (y[test] == 1).sum() == 1 and (y[train] == 1).sum() == 2
    assert len(val) == 11 and len(test) == 11  # the big class is split exactly as before
    y2 = np.array([0] * 100 + [1] * 2)  # too few to share: all in train
    assert (y2[arrays.stratified_split(y2, len(y2), (0.1, 0.1))[0]] == 1).sum() == 2


def test_a_folder_of_photos_of_different_sizes_and_modes(tmp_path):
    """A user's photos differ in size and mode: image_size= resizes them as they are read (before, the only
    answer was 'resize the images to one size first'), and `channels` reads a grey photo for a colour model."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for i, (size, mode) in enumerate([((40, 28), "RGB"), ((64, 64), "RGBA"), ((20, 30), "L"), ((32, 32), "P")] * 3):
        (tmp_path / "photos" / ("cats" if i % 2 else "dogs")).mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).convert(mode).save(tmp_path / "photos" / ("cats" if i % 2 else "dogs") / f"{i}.png")
    with pytest.raises(InputDataError, match=r"resize the images to one size first, or .* image_size="):
        load_arrays(str(tmp_path / "photos"))
    data = load_arrays(str(tmp_path / "photos"), image_size=16)
    assert data.sample_shape == (3, 16, 16) and data.class_names == ["cats", "dogs"]
    assert len(data.train) + len(data.val) + len(data.test) == 12
    grey = tmp_path / "photos" / "dogs" / "2.png"
    assert array_files.read_samples(grey).shape == (1, 30, 20)  # (N, H, W): grey, one channel
    colour = array_files.read_samples(grey, image_size=16, channels=3)
    assert colour.shape == (1, 3, 16, 16) and (colour[:, 0] == colour[:, 1]).all()  # grey, as colour
    np.save(tmp_path / "t.npy", np.zeros((5, 3)))
    with pytest.raises(ConfigError, match="image_size=16 resizes image files"):
        load_arrays(str(tmp_path / "t.npy"), image_size=16)
    with pytest.raises(ConfigError, match="data=mnist has its own fixed size"):
        load_arrays("mnist", image_size=16)
