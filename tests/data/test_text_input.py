import json

import pytest

from encoderlab import InputDataError
from encoderlab.data import read_texts


def test_txt_keeps_one_row_per_line(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("first\n\nthird line\n", encoding="utf-8")
    assert read_texts(path) == ["first", "", "third line"]


def test_jsonl_with_custom_field(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps({"body": t, "id": i}) for i, t in enumerate(["a", "b"])) + "\n\n")
    assert read_texts(path, text_field="body") == ["a", "b"]


@pytest.mark.parametrize("content,message", [
    ('{"text": "ok"}\n{oops\n', r"in.jsonl:2: not valid JSON"),
    ('{"text": "ok"}\n{"body": "x"}\n', r"in.jsonl:2: no 'text' field \(found \['body'\]\)"),
    ('{"text": 5}\n', r"in.jsonl:1: field 'text' is int"),
])
def test_bad_jsonl_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "in.jsonl"
    path.write_text(content)
    with pytest.raises(InputDataError, match=message):
        read_texts(path)


def test_unreadable_inputs(tmp_path):
    with pytest.raises(InputDataError, match="does not exist"):
        read_texts(tmp_path / "missing.txt")
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(InputDataError, match="not UTF-8"):
        read_texts(tmp_path / "latin.txt")
    with pytest.raises(InputDataError, match="suffix '.csv'"):
        read_texts(tmp_path / "table.csv")
    (tmp_path / "folder.txt").mkdir()
    with pytest.raises(InputDataError, match="is a directory"):
        read_texts(tmp_path / "folder.txt")
