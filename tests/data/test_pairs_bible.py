"""Spanish-English Bible verse pairs: OSIS markup is cleaned without gluing words, verses align by reference,
a pairs file with a group column splits by group (no chapter on both sides), subword vocabularies are
joint and round-trip, and a missing apt-get / pysword is an error that points to the generic pairs path."""

from pathlib import Path

import pytest

from encoderlab.data import bible
from encoderlab.data.bible import align, clean_verse
from encoderlab.data.pairs import SubwordVocabulary, Vocabulary, load_pairs, read_pairs_file, split_by_source
from encoderlab.errors import InputDataError

SLICE = Path(__file__).parent / "bible-es-en-slice.tsv"


def test_notes_become_a_space_and_markup_vanishes():
    # Genesis 1:1 as the WEB module stores it (clean=True in pysword would give "Godcreated")
    osis = ('<w lemma="strong:H0430">In</w> <w lemma="strong:H0853">the</w> <w lemma="strong:H7225">beginning</w>, '
            '<w lemma="strong:H0430">God</w><note placement="foot"><reference type="annotateRef">1:1 </reference>'
            'The Hebrew word rendered “God” is “אֱלֹהִ֑ים” (Elohim).</note><w lemma="strong:H1254">created</w> '
            '<w>the</w> <w>heavens</w>. <div eID="gen25" type="x-p"/>')
    assert clean_verse(osis) == "In the beginning, God created the heavens."
    assert clean_verse("<q who=\"Jesus\">A &amp; B</q>  ") == "A & B"
    psalm = ('<title canonical="true" type="psalm">A Psalm by David.</title> <l/>Yahweh, how'
             '<title type="x-gen">Not the text</title> many!')
    assert clean_verse(psalm) == "A Psalm by David. Yahweh, how many!"
    assert clean_verse('saints. Amen. <chapter eID="Rev.22"/> <div sID="g1" type="glossary"/> Abba Father') == \
        "saints. Amen."


def test_verses_align_by_reference_and_keep_their_chapter():
    spanish = {("Gen", 1, 1): "EN el principio", ("Gen", 1, 2): "Y la tierra", ("Tob", 1, 1): "solo en uno",
               ("Rom", 14, 23): "Mas el que hace diferencia, si comiere, es condenado"}
    english = {("Gen", 1, 2): "The earth", ("Gen", 1, 1): "In the beginning",
               ("Rom", 14, 23): "But he who doubts is condemned if he eats. " * 5}  # + three more verses
    assert align(spanish, english) == [("Gen.1", "EN el principio", "In the beginning"),
                                       ("Gen.1", "Y la tierra", "The earth")]


def test_the_slice_splits_by_chapter():
    pairs = load_pairs(str(SLICE), "spanish", "english", group_column="chapter")
    assert len(pairs) == 357 and len(set(pairs.groups)) == 22
    assert pairs.sources[0].startswith("Y ACONTECIÓ") and pairs.targets[0].startswith("In the days when")
    train, val, test = split_by_source(pairs, (0.8, 0.1, 0.1), seed=0)
    chapters = [set(p.groups) for p in (train, val, test)]
    assert not (chapters[0] & chapters[1] or chapters[0] & chapters[2] or chapters[1] & chapters[2])
    assert len(train) + len(val) + len(test) == len(pairs) and all(len(c) >= 2 for c in chapters)
    by_verse = split_by_source(load_pairs(str(SLICE), "spanish", "english"), (0.8, 0.1, 0.1), seed=0)
    assert {len(p) for p in by_verse} != {len(p) for p in (train, val, test)}  # grouping changed the split


def test_joint_subword_vocabulary_round_trips():
    pairs = load_pairs(str(SLICE), "spanish", "english", group_column="chapter")
    vocab = SubwordVocabulary.build(pairs.sources + pairs.targets, vocab_size=600)
    assert vocab.tokens[:4] == ["<pad>", "<unk>", "<s>", "</s>"] and len(vocab) == 600
    text = pairs.targets[5]
    ids = vocab.encode(text)
    assert min(ids) >= 4 and len(ids) < len(text) / 2  # pieces, not characters
    assert vocab.decode(ids) == text and vocab.pieces(text) == text.split()
    assert vocab.encode("Jonás") and vocab.encode("Jonah")  # both languages in one vocabulary
    again = Vocabulary.from_dict(vocab.to_dict())
    assert isinstance(again, SubwordVocabulary) and again.encode(text) == ids and again.decode(ids) == text


def test_bad_pairs_files_and_missing_tools_get_clear_errors(tmp_path, monkeypatch):
    bad = tmp_path / "pairs.tsv"
    bad.write_text("chapter\tspanish\tenglish\nGen.1\tEN el principio\t\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"pairs.tsv:2.*source and a target"):
        read_pairs_file(bad, "spanish", "english")
    with pytest.raises(InputDataError, match="target_column="):
        read_pairs_file(SLICE, "spanish", "inglés")
    monkeypatch.setattr(bible.shutil, "which", lambda tool: None)
    with pytest.raises(InputDataError, match=r"apt-get and dpkg is not available.*data=pairs.tsv"):
        bible.fetch_modules(tmp_path / "empty-cache")
    monkeypatch.setattr(bible.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputDataError, match=r"pysword==0.2.8"):
        bible.read_module_verses(tmp_path, "spaRV1909eb")


@pytest.mark.slow
@pytest.mark.skipif(not (bible.CACHE / bible.PAIRS_FILE).is_file(), reason="bible-es-en not fetched on this machine")
def test_the_full_corpus_has_thirty_thousand_pairs_in_1189_chapters():
    pairs = load_pairs("bible-es-en")
    assert 30_000 < len(pairs) < 32_000 and len(set(pairs.groups)) == 1189
    assert not any("<" in s or "<" in t for s, t in zip(pairs.sources[:3000], pairs.targets[:3000], strict=True))
