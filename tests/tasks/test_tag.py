"""POS tagging end to end on a small slice of People's Daily 1998 with a tiny encoder."""

import json

import pytest

from encoderlab.artifacts.tagger import TokenTagger
from encoderlab.cli import main
from encoderlab.errors import InputDataError
from encoderlab.tasks.tag import TagConfig, finetune_tagger

from .finetune_fixtures import one_thread, write_tiny_encoder  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, minilm_dir):
    return write_tiny_encoder(tmp_path_factory.mktemp("tiny") / "enc", minilm_dir)


def test_pos_tagging_trains_saves_and_predicts_every_word(tmp_path, tiny):
    cfg = TagConfig(init=str(tiny), mode="full", out_dir=str(tmp_path / "run"), max_train_examples=48,
                    max_eval_examples=16, max_test_examples=16, max_length=64, batch_size=16, epochs=1, lr=1e-3,
                    progress="off")
    metrics = finetune_tagger(cfg)
    assert 0.0 <= metrics["test_token_accuracy"] <= 1.0 and len(metrics["tag_names"]) == 44
    saved = json.loads((tmp_path / "run" / "eval_test.json").read_text())
    assert saved["n"] + saved["words_truncated"] > 100  # every word of 16 sentences is scored or counted as cut

    tagger = TokenTagger.from_pretrained(tmp_path / "run")
    sentences = [["中国", "人民", "欢迎", "你"], ["今天", "天气", "很", "好", "。"]]
    tags = tagger.predict(sentences)
    assert [len(t) for t in tags] == [4, 5] and all(t in tagger.tag_names for row in tags for t in row)

    (tmp_path / "in.txt").write_text("中国 人民 欢迎 你\n今天 天气 很 好 。\n", encoding="utf-8")
    with pytest.raises(SystemExit) as code:
        main(["predict", "--model", str(tmp_path / "run"), "--input", str(tmp_path / "in.txt"),
              "--output", str(tmp_path / "tags.jsonl")])
    assert code.value.code == 0
    lines = [json.loads(x) for x in (tmp_path / "tags.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [x["tags"] for x in lines] == tags


def test_user_tag_file_errors(tmp_path, tiny):
    (tmp_path / "bad.txt").write_text("中国/ns 人民\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"bad\.txt:1: '人民' is not word/TAG"):
        finetune_tagger(TagConfig(data=str(tmp_path / "bad.txt"), init=str(tiny), out_dir=str(tmp_path / "r")))
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"empty\.txt.*empty"):
        finetune_tagger(TagConfig(data=str(tmp_path / "empty.txt"), init=str(tiny), out_dir=str(tmp_path / "r")))


def test_user_word_tag_file_evaluate_from_elsewhere_and_bad_predict_input(tmp_path, tiny, monkeypatch, capsys):
    lines = ["the/DET big/ADJ cat/NOUN sat/VERB", "a/DET small/ADJ dog/NOUN ran/VERB", "the/DET dog/NOUN sat/VERB"]
    (tmp_path / "tags.txt").write_text("\n".join(lines * 10) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    metrics = finetune_tagger(TagConfig(data="tags.txt", init=str(tiny), out_dir="run", batch_size=8, epochs=1,
                                        lr=1e-3, progress="off"))
    assert metrics["tag_names"] == ["ADJ", "DET", "NOUN", "VERB"]
    monkeypatch.chdir(tmp_path.parent)  # the same file, named from elsewhere: still its held-out test rows
    with pytest.raises(SystemExit) as code:
        main(["evaluate", "--model", f"{tmp_path.name}/run", "--data", f"{tmp_path.name}/tags.txt"])
    assert code.value.code == 0
    assert (tmp_path / "run" / "evaluations" / "eval_tags_test.json").is_file()

    (tmp_path / "bad.jsonl").write_text('{"tokens": ["a", "cat"]}\nnot json\n', encoding="utf-8")
    with pytest.raises(SystemExit) as code:
        main(["predict", "--model", str(tmp_path / "run"), "--input", str(tmp_path / "bad.jsonl"),
              "--output", str(tmp_path / "out.jsonl")])
    assert code.value.code == 2
    assert "bad.jsonl:2: not valid JSON" in capsys.readouterr().err and not (tmp_path / "out.jsonl").exists()
    with pytest.raises(SystemExit) as code:
        main(["predict", "--model", str(tmp_path / "run"), "--input", str(tmp_path / "bad.jsonl"),
              "--output", str(tmp_path / "out.csv")])
    assert code.value.code == 2 and "a tagger writes one JSON line" in capsys.readouterr().err


def test_conll_and_jsonl_tagging_files_read_like_word_tag_lines(tmp_path):
    from encoderlab.data.catalog import read_tagged_file

    sentences = [[("The", "DET"), ("cat", "NOUN"), ("sat", "VERB")], [("A", "DET"), ("1/2", "NUM")]]
    (tmp_path / "a.txt").write_text("\ufeff" + "\n".join(" ".join(f"{w}/{t}" for w, t in s) for s in sentences) + "\n",
                                    encoding="utf-8")
    (tmp_path / "a.conll").write_text("-DOCSTART- -X- O\n\n# sent 1\n" + "\n\n".join(
        "\n".join(f"{w}\tX\t{t}" for w, t in s) for s in sentences) + "\n", encoding="utf-8")
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"tokens": [w for w, _ in s], "tags": [t for _, t in s]})
                                              + "\n" for s in sentences), encoding="utf-8")
    read = [read_tagged_file(tmp_path / name) for name in ("a.txt", "a.conll", "a.jsonl")]
    for records in read:
        assert records.tokens == [["The", "cat", "sat"], ["A", "1/2"]] and records.tag_names == ("DET", "NOUN",
                                                                                                  "NUM", "VERB")
        assert records.tags == read[0].tags
    (tmp_path / "bad.conll").write_text("The\tDET\ncat\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"bad\.conll:2: 'cat' is not a word and its tag"):
        read_tagged_file(tmp_path / "bad.conll")
    (tmp_path / "bad.jsonl").write_text('{"tokens": ["a", "b"], "tags": ["X"]}\n', encoding="utf-8")
    with pytest.raises(InputDataError, match=r"bad\.jsonl:1: expected .*same length"):
        read_tagged_file(tmp_path / "bad.jsonl")
    with pytest.raises(InputDataError, match=r"has suffix '\.csv'; use \.txt \(word/TAG lines\)"):
        read_tagged_file(tmp_path / "x.csv")


def test_evaluate_a_tagger_on_an_empty_or_unknown_split(tmp_path, tiny, capsys):
    (tmp_path / "tags.txt").write_text("the/DET cat/NOUN sat/VERB\na/DET dog/NOUN ran/VERB\n" * 10, encoding="utf-8")
    finetune_tagger(TagConfig(data=str(tmp_path / "tags.txt"), init=str(tiny), out_dir=str(tmp_path / "run"),
                              split="0.9,0.1,0", batch_size=4, max_steps=1, progress="off"))
    for extra, message in (([], "has no test sentences (split=0.9,0.1,0)"),
                           (["--split", "bogus"], "split='bogus' is unknown")):
        with pytest.raises(SystemExit) as code:
            main(["evaluate", "--model", str(tmp_path / "run"), "--data", str(tmp_path / "tags.txt"), *extra])
        assert code.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "run" / "evaluations").exists()
