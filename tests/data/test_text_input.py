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
    with pytest.raises(InputDataError, match=r"suffix '\.xlsx'; use one of \.txt, \.jsonl, \.csv, \.tsv"):
        read_texts(tmp_path / "table.xlsx")
    (tmp_path / "folder.txt").mkdir()
    with pytest.raises(InputDataError, match="is a directory"):
        read_texts(tmp_path / "folder.txt")


def test_utf8_byte_order_mark_is_not_part_of_the_text(tmp_path):
    """Excel's "CSV UTF-8" and Notepad write a BOM; it must not end up in the first header cell or text."""
    from encoderlab.data.text_input import read_csv_rows, read_jsonl_records, read_text_file

    bom = "\ufeff"
    (tmp_path / "in.txt").write_text(bom + "first\r\nsecond\r\n", encoding="utf-8")
    assert read_texts(tmp_path / "in.txt") == ["first", "second"]
    assert read_text_file(tmp_path / "in.txt").splitlines() == ["first", "second"]
    (tmp_path / "in.jsonl").write_text(bom + '{"text": "a", "y": "p"}\r\n{"text": "b", "y": "n"}\r\n', encoding="utf-8")
    assert read_jsonl_records(tmp_path / "in.jsonl", "text", "y") == (["a", "b"], ["p", "n"])
    (tmp_path / "in.csv").write_text(bom + "review,stars\r\ngood,5\r\nbad,1\r\n", encoding="utf-8")
    assert read_csv_rows(tmp_path / "in.csv", "review", "stars") == (["good", "bad"], ["5", "1"], [])


def test_missing_field_names_the_option_of_the_command(tmp_path):
    """The fix in the message is spelled as the user types it in the command that failed."""
    from encoderlab.data.text_input import read_csv_rows, read_jsonl_records

    (tmp_path / "in.jsonl").write_text('{"body": "a", "stars": 5}\n')
    with pytest.raises(InputDataError, match=r"in\.jsonl:1: no 'text' field .*with --text-field$"):
        read_texts(tmp_path / "in.jsonl")
    with pytest.raises(InputDataError, match=r"no 'text' field .*with text_column=$"):
        read_jsonl_records(tmp_path / "in.jsonl", "text", "label")
    with pytest.raises(InputDataError, match=r"in\.jsonl:1: no 'label' field \(found \['body', 'stars'\]\).* "
                                             r"with --label-column$"):
        read_jsonl_records(tmp_path / "in.jsonl", "body", "label", options=("--text-column", "--label-column"))
    (tmp_path / "in.csv").write_text("review,stars\ngood,5\n")
    with pytest.raises(InputDataError, match=r"no column 'label' .*with label_column=$"):
        read_csv_rows(tmp_path / "in.csv", "review", "label")
    with pytest.raises(InputDataError, match=r"no column 'text' .*with text_field=$"):
        read_csv_rows(tmp_path / "in.csv", "text", options=("text_field=", "label_column="))


def test_semicolon_separated_csv_says_so(tmp_path):
    """A European Excel export separates cells with ';': say that, rather than 'no column' for a column the
    user can see in the file."""
    from encoderlab.data.text_input import read_csv_rows

    (tmp_path / "in.csv").write_text("review;stars\ngood;5\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"in\.csv:1: the header \['review;stars'\] is one cell: the file is "
                                             r"separated by ';', not ','"):
        read_csv_rows(tmp_path / "in.csv", "review", "stars")


def test_a_duplicated_header_of_the_text_or_label_column_is_refused(tmp_path):
    """A spreadsheet with two 'text' columns used to be read silently by its first one; which was meant is the
    user's call. Duplicates of columns that are not read do not matter."""
    from encoderlab.data.text_input import read_csv_rows

    (tmp_path / "in.csv").write_text("text,label,text\nfirst,p,x\nsecond,n,y\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"in\.csv:1: the header names 'text' 2 times \(columns 1, 3\)"):
        read_csv_rows(tmp_path / "in.csv", "text", "label")
    with pytest.raises(InputDataError, match=r"names 'text' 2 times"):
        read_texts(tmp_path / "in.csv")
    (tmp_path / "labels.csv").write_text("label,text,label\np,first,q\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"names 'label' 2 times \(columns 1, 3\)"):
        read_csv_rows(tmp_path / "labels.csv", "text", "label")
    (tmp_path / "other.csv").write_text("note,text,label,note\na,first,p,b\n", encoding="utf-8")
    assert read_csv_rows(tmp_path / "other.csv", "text", "label") == (["first"], ["p"], [])
    from encoderlab.data.text_stream import iter_texts  # encode --output DIR streams the file: the same rule

    with pytest.raises(InputDataError, match=r"in\.csv:1: the header names 'text' 2 times \(columns 1, 3\)"):
        list(iter_texts(tmp_path / "in.csv"))
    (tmp_path / "semi.csv").write_text("text;label\nfirst;p\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"semi\.csv:1: the header \['text;label'\] is one cell"):
        list(iter_texts(tmp_path / "semi.csv"))


def test_csv_and_tsv_inputs_give_one_text_per_row(tmp_path):
    """encode and predict read a spreadsheet's text column; a row without text is an error, never skipped."""
    (tmp_path / "in.csv").write_text('id,review\n1,"Good, fast"\n2,"two\nlines"\n', encoding="utf-8")
    assert read_texts(tmp_path / "in.csv", text_field="review") == ["Good, fast", "two\nlines"]
    (tmp_path / "in.tsv").write_text("review\tid\nfirst\t1\nsecond\t2\n", encoding="utf-8")
    assert read_texts(tmp_path / "in.tsv", text_field="review") == ["first", "second"]
    with pytest.raises(InputDataError, match=r"no column 'text' in the header \['id', 'review'\]; .* --text-field"):
        read_texts(tmp_path / "in.csv")
    (tmp_path / "gap.csv").write_text("text\nfirst\n\"\"\nthird\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"gap\.csv: 1 rows cannot be used, e.g. .*gap\.csv:3: empty 'text'"):
        read_texts(tmp_path / "gap.csv")


def test_blank_lines_in_a_csv_are_not_bad_rows(tmp_path):
    from encoderlab.data.text_input import read_csv_rows

    (tmp_path / "in.csv").write_text("text,label\r\ngood,p\r\n\r\nbad,n\r\n\r\n\r\n", encoding="utf-8")
    assert read_csv_rows(tmp_path / "in.csv", "text", "label") == (["good", "bad"], ["p", "n"], [])


def test_utf16_and_latin1_files_get_the_right_conversion_command(tmp_path):
    """Notepad's 'Unicode' is UTF-16: the fix is iconv -f utf-16, not -f latin1."""
    from encoderlab.data.text_input import read_csv_rows, read_text_file

    (tmp_path / "u16.csv").write_text("text,label\ncafé,a\n", encoding="utf-16")
    with pytest.raises(InputDataError, match=r"is UTF-16 text; convert it to UTF-8, e.g. `iconv -f utf-16 -t utf-8 "
                                             r"u16\.csv > utf8-u16\.csv`"):
        read_csv_rows(tmp_path / "u16.csv", "text", "label")
    (tmp_path / "u16.txt").write_text("café\n", encoding="utf-16")
    for read in (read_texts, read_text_file):
        with pytest.raises(InputDataError, match=r"u16\.txt' is UTF-16 text; .*iconv -f utf-16"):
            read(tmp_path / "u16.txt")
    (tmp_path / "latin.csv").write_bytes("text,label\ncafé,a\n".encode("latin-1"))
    with pytest.raises(InputDataError, match=r"is not UTF-8 text \(byte 14\); .*iconv -f latin1"):
        read_csv_rows(tmp_path / "latin.csv", "text", "label")


def test_jsonl_row_with_an_empty_text_is_an_error_like_in_a_csv(tmp_path):
    from encoderlab.data.text_input import read_jsonl_records

    (tmp_path / "in.jsonl").write_text('{"text": "good", "y": "p"}\n{"text": "  ", "y": "n"}\n', encoding="utf-8")
    with pytest.raises(InputDataError, match=r"in\.jsonl:2: the 'text' text is empty"):
        read_jsonl_records(tmp_path / "in.jsonl", "text", "y")
    assert read_jsonl_records(tmp_path / "in.jsonl", "text")[0] == ["good", "  "]  # pretraining drops it later
    assert read_texts(tmp_path / "in.jsonl") == ["good", "  "]  # encode / predict keep one output per line


def test_a_list_of_labels_is_refused_not_turned_into_a_class_name(tmp_path):
    from encoderlab.data.text_input import read_jsonl_records

    (tmp_path / "in.jsonl").write_text('{"text": "a", "y": "p"}\n{"text": "b", "y": ["p", "n"]}\n', encoding="utf-8")
    with pytest.raises(InputDataError, match=r"in\.jsonl:2: the 'y' label is a list; each text takes one label"):
        read_jsonl_records(tmp_path / "in.jsonl", "text", "y")


def test_parquet_texts_and_labels_like_a_csv(tmp_path):
    """A user's Parquet file (pandas' default export) for finetune / encode / predict: refused before ('has
    suffix .parquet'), though the multimodal and recommend commands read Parquet."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from encoderlab.data.catalog import load_records
    from encoderlab.data.text_input import read_parquet_rows
    from encoderlab.data.text_stream import count_rows, iter_texts

    path = tmp_path / "my reviews.parquet"
    pq.write_table(pa.table({"Review Text": ["très bien", "bad 😡", None, "ok"], "stars": [5, 1, 3, None],
                             "extra": [1, 2, 3, 4]}), path)
    assert read_parquet_rows(path, "Review Text", "stars") == (
        ["très bien", "bad 😡"], ["5", "1"], [f"{path}: row 3: empty 'Review Text'", f"{path}: row 4: empty 'stars'"])
    with pytest.raises(InputDataError, match=r"1 rows cannot be used, e.g. .*row 3: empty 'Review Text'"):
        read_texts(path, text_field="Review Text")
    with pytest.raises(InputDataError, match=r"no column 'text' among \['Review Text', 'stars', 'extra'\]; name "
                                             r"the right one with --text-field"):
        read_texts(path)
    with pytest.raises(InputDataError, match=r"(?s)2 bad rows:.*row 3.*bad_rows=warn"):
        load_records(path, text_field="Review Text", label_field="stars")
    records = load_records(path, text_field="Review Text", label_field="stars", bad_rows="warn")
    assert records.texts == ["très bien", "bad 😡"] and list(records.label_names) == ["1", "5"]

    clean = tmp_path / "clean.parquet"
    pq.write_table(pa.table({"body": ["first", "second", "third"]}), clean)
    assert list(iter_texts(clean, "body")) == read_texts(clean, "body") == ["first", "second", "third"]
    assert count_rows(clean) == 3
    with pytest.raises(InputDataError, match=r"row 3: empty 'Review Text'"):
        list(iter_texts(path, "Review Text"))
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputDataError, match=r"cannot read .*broken\.parquet' as Parquet"):
        read_texts(tmp_path / "broken.parquet")


def test_hidden_files_and_folders_are_not_documents(tmp_path):
    """Jupyter leaves .ipynb_checkpoints/ in a folder it opened; it became a class (and the run failed: 'class
    .ipynb_checkpoints has only 1 example'). macOS zips carry ._name resource forks."""
    from encoderlab.data.catalog import load_records
    from encoderlab.data.text_input import read_text_folder

    for name, text in (("sport/a.txt", "goal scored"), ("sport/b.txt", "match won"), ("money/c.txt", "stocks fell"),
                       ("money/d.txt", "budget cut"), (".ipynb_checkpoints/a-checkpoint.txt", "junk"),
                       ("sport/._a.txt", "\x00\x05binary"), ("money/.hidden/e.txt", "junk")):
        (tmp_path / "docs" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "docs" / name).write_text(text, encoding="utf-8")
    docs, labels, files = read_text_folder(tmp_path / "docs")
    assert docs == ["stocks fell", "budget cut", "goal scored", "match won"]
    assert labels == ["money", "money", "sport", "sport"]
    assert list(load_records(tmp_path / "docs", label_field="label").label_names) == ["money", "sport"]
