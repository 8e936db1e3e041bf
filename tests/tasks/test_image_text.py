"""The image-text (CLIP-style) task end to end on the 39-image emoji subset with a tiny text tower: held-out
base emoji, metrics, reload-and-encode, and errors on bad input."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from encoderlab.artifacts.image_text import ImageTextEncoder
from encoderlab.errors import InputDataError
from encoderlab.tasks.image_text import ImageTextConfig, train_image_text
from encoderlab.training import run_task

from .finetune_fixtures import one_thread, write_tiny_encoder  # noqa: F401

SUBSET = Path(__file__).parents[1] / "data" / "emoji"


@pytest.fixture()
def emoji_cache(tmp_path, monkeypatch):
    shutil.copytree(SUBSET, tmp_path / "cache" / "emoji-datasource-google-16.0.0")
    monkeypatch.setenv("ENCODERLAB_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory, minilm_dir):
    return write_tiny_encoder(tmp_path_factory.mktemp("tiny") / "bert", minilm_dir)


def run(tmp_path, tiny_text, *extra):
    return run_task(train_image_text, ImageTextConfig, None, [
        f"text_model={tiny_text}", f"out_dir={tmp_path / 'run'}", "test_fraction=0.3", "val_fraction=0.2",
        "batch_size=8", "threads=1", "progress=off", "model.image.image_size=16", "model.image.d_model=32",
        "model.image.n_layers=1", "model.image.n_heads=2", "model.image.d_ff=32", "model.image.cnn_channels=[8,16]",
        "model.d_embed=16", "lr=3e-3", *extra])


@pytest.mark.parametrize("kind", ["cnn", "vit"])
def test_train_and_reload_an_image_text_model(tmp_path, tiny_text, emoji_cache, kind):
    metrics = run(tmp_path, tiny_text, f"model.image.kind={kind}", "epochs=3")
    n = metrics["test_pairs"]
    assert n >= 5 and metrics["train_pairs"] + metrics["val_pairs"] + n == 39
    for key in ("text_to_image_recall@1", "image_to_text_recall@10", "zero_shot_category_accuracy",
                "pixel_nearest_neighbour_category_accuracy", "nearest_name_category_accuracy",
                "zero_shot_category_accuracy_ensemble", "nearest_name_category_accuracy_ensemble"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["ensemble_prompts"] == 9 + 10  # a prompt per category and per subcategory of the subset
    assert metrics["chance_recall@1"] == pytest.approx(1 / n)
    model = ImageTextEncoder.from_dir(tmp_path / "run")
    folder = SUBSET / "img" / "google" / "64"
    vectors = model.encode_images(folder)
    assert vectors.shape == (39, 16) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    again = ImageTextEncoder.from_dir(tmp_path / "run" / "final")
    np.testing.assert_array_equal(again.encode_images(folder), vectors)  # reload -> the same vectors
    np.testing.assert_array_equal(again.encode_texts(["grinning face"]), model.encode_texts(["grinning face"]))
    assert set(model.classify(folder, ["Flags", "Objects"])) <= {"Flags", "Objects"}


def test_subcategories_and_prompt_ensembles():
    from encoderlab.data.images import emoji_subcategories
    from encoderlab.tasks.image_text import class_means, ensemble_prompts

    subs = emoji_subcategories(SUBSET)
    assert subs["People & Body"] == ["hand fingers open", "body parts"] and subs["Flags"] == ["flag"]
    texts, owner = ensemble_prompts(["Flags", "People & Body"], "category {}", subs, "an emoji of {}")
    assert texts == ["category Flags", "an emoji of flag", "category People & Body", "an emoji of hand fingers open",
                     "an emoji of body parts"]
    assert owner.tolist() == [0, 0, 1, 1, 1]
    vectors = np.array([[1, 0], [0, 1], [1, 0], [1, 0], [1, 0]], dtype=np.float32)
    np.testing.assert_allclose(class_means(vectors, owner, 2), [[0.5 ** 0.5, 0.5 ** 0.5], [1, 0]], rtol=1e-6)


def test_bad_image_inputs_are_clear_errors(tmp_path, tiny_text, emoji_cache):
    run(tmp_path, tiny_text, "model.image.kind=cnn", "max_steps=1", "eval_every=0")
    model = ImageTextEncoder.from_dir(tmp_path / "run")
    from PIL import Image

    Image.new("RGBA", (32, 32)).save(tmp_path / "small.png")
    with pytest.raises(InputDataError, match="is 32x32 pixels, expected 64x64"):
        model.encode_images([tmp_path / "small.png"])
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(InputDataError, match="cannot read image"):
        model.encode_images([tmp_path / "bad.png"])
    with pytest.raises(InputDataError, match=r"expected \(N, 3, 16, 16\)"):
        model.encode_images(np.zeros((2, 3, 64, 64), dtype=np.float32))
    with pytest.raises(InputDataError, match="neither a folder of images nor a .csv"):
        model.encode_images(tmp_path / "nothing.txt")


def test_a_csv_of_pairs_trains_too(tmp_path, tiny_text):
    folder = SUBSET / "img" / "google" / "64"
    lines = ["image,text,category"] + [f"{p},picture {i},{'odd' if i % 2 else 'even'}"
                                       for i, p in enumerate(sorted(folder.iterdir()))]
    (tmp_path / "pairs.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    metrics = run(tmp_path, tiny_text, f"data={tmp_path / 'pairs.csv'}", "model.image.kind=cnn", "max_steps=2",
                  "model.train_text=true")  # the text tower trains too: token ids go through it every step
    assert metrics["text_trained"] and metrics["categories"] == 2 and metrics["chance_category_accuracy"] == 0.5
    (tmp_path / "bad.csv").write_text("path,caption\nx.png,y\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"no column\(s\) \['image', 'text'\]"):
        run(tmp_path / "second", tiny_text, f"data={tmp_path / 'bad.csv'}")
