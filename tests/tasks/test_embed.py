"""Contrastive sentence-embedding training on real pairs (BBC headline -> first paragraph) with a tiny encoder."""

import json

import numpy as np
import pytest
import torch

from encoderlab.artifacts.text_encoder import TextEncoder
from encoderlab.errors import InputDataError
from encoderlab.tasks.embed import (
    EmbedConfig,
    multiple_negatives_ranking_loss,
    read_pairs,
    supervised_contrastive_loss,
    train_embeddings,
)

from .finetune_fixtures import one_thread, write_tiny_encoder  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, minilm_dir):
    return write_tiny_encoder(tmp_path_factory.mktemp("tiny") / "enc", minilm_dir)


@pytest.fixture(scope="module")
def bbc_pairs(tmp_path_factory):
    from encoderlab.data.catalog import load_dataset

    texts = load_dataset("bbc-news").train.texts[:80]
    rows = []
    for text in texts:
        parts = [p.strip() for p in text.split("\n") if p.strip()]
        rows.append({"anchor": parts[0], "positive": parts[1]})
    path = tmp_path_factory.mktemp("pairs") / "bbc_pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_mnrl_matches_its_definition():
    torch.manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    p = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    scores = 20 * a @ p.T
    expected = -torch.stack([scores[i].log_softmax(0)[i] for i in range(4)]).mean()
    torch.testing.assert_close(multiple_negatives_ranking_loss(a, p, 20.0), expected)
    assert multiple_negatives_ranking_loss(a, a, 20.0) < multiple_negatives_ranking_loss(a, p, 20.0)


def test_supervised_contrastive_prefers_clustered_labels():
    labels = torch.tensor([0, 0, 1, 1])
    clustered = torch.tensor([[1.0, 0], [1, 0], [0, 1], [0, 1]])
    mixed = torch.tensor([[1.0, 0], [0, 1], [1, 0], [0, 1]])
    assert supervised_contrastive_loss(clustered, labels, 5.0) < supervised_contrastive_loss(mixed, labels, 5.0)
    assert supervised_contrastive_loss(clustered, torch.tensor([0, 1, 2, 3]), 5.0) == 0.0  # no partners


def test_pairs_training_improves_recall_and_saves_a_plain_encoder(tmp_path, tiny, bbc_pairs):
    cfg = EmbedConfig(data=str(bbc_pairs), init=str(tiny), mode="full", out_dir=str(tmp_path / "run"),
                      split="0.75,0.25,0", max_length=48, batch_size=10, epochs=3, lr=1e-3, progress="off")
    metrics = train_embeddings(cfg)
    assert metrics["validation_recall_at_1"] > metrics["initial_validation_recall_at_1"]
    encoder = TextEncoder.from_pretrained(tmp_path / "run" / "final")  # what `encoderlab encode` loads
    vectors = encoder.encode(["Ad sales boost Time Warner profit", "Dollar gains on Greenspan speech"])
    assert vectors.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_label_supervised_variant_runs(tmp_path, tiny):
    cfg = EmbedConfig(objective="labels", data="bbc-news", init=str(tiny), mode="lora", out_dir=str(tmp_path / "r"),
                      max_train_examples=40, max_eval_examples=20, max_length=32, batch_size=10, epochs=1,
                      progress="off")
    metrics = train_embeddings(cfg)
    assert 0.0 <= metrics["validation_same_label_at_1"] <= 1.0


def test_bad_pairs_files(tmp_path):
    (tmp_path / "p.csv").write_text("question,answer\nq,a\n")
    with pytest.raises(InputDataError, match=r"p\.csv:1: no column 'anchor'"):
        read_pairs(tmp_path / "p.csv")
    (tmp_path / "p.jsonl").write_text('{"anchor": "x", "positive": "y"}\n{"anchor": "x"}\n')
    with pytest.raises(InputDataError, match=r"p\.jsonl, column 'positive', row 2"):
        read_pairs(tmp_path / "p.jsonl")
    (tmp_path / "e.jsonl").write_text("")
    with pytest.raises(InputDataError, match="empty"):
        read_pairs(tmp_path / "e.jsonl")


def test_pairs_file_mistakes_point_to_the_fix(tmp_path):
    """Labelled rows given to the pairs objective: the message names the columns found and objective=labels;
    a BOM (Excel's CSV UTF-8) does not hide the first column."""
    (tmp_path / "reviews.jsonl").write_text('{"body": "good", "label": "pos"}\n')
    with pytest.raises(InputDataError, match=r"column 'anchor', row 1: no such field \(found \['body', 'label'\]\).*"
                                             r"objective=labels"):
        read_pairs(tmp_path / "reviews.jsonl")
    (tmp_path / "reviews.csv").write_text("review,label\ngood,pos\n")
    with pytest.raises(InputDataError, match=r"no column 'anchor'.*objective=labels"):
        read_pairs(tmp_path / "reviews.csv")
    (tmp_path / "bom.csv").write_text("\ufeffanchor,positive\nq one,a one\n", encoding="utf-8")
    assert read_pairs(tmp_path / "bom.csv") == [("q one", "a one")]


def test_evaluate_or_predict_with_an_embedding_model_says_what_it_is(tmp_path, tiny, bbc_pairs, capsys):
    from encoderlab.cli import main

    train_embeddings(EmbedConfig(data=str(bbc_pairs), init=str(tiny), out_dir=str(tmp_path / "emb"), max_steps=1,
                                 batch_size=4, progress="off"))
    (tmp_path / "in.txt").write_text("hello\n")
    with pytest.raises(SystemExit) as code:
        main(["predict", "--model", str(tmp_path / "emb"), "--input", str(tmp_path / "in.txt"), "--output",
              str(tmp_path / "p.jsonl")])
    assert code.value.code == 2
    err = capsys.readouterr().err
    assert "a sentence-embedding model (finetune task=embed)" in err and "encoderlab encode --model" in err


def test_frozen_mode_is_refused_before_anything_runs(tmp_path, bbc_pairs, capsys):
    from encoderlab.cli import main

    with pytest.raises(SystemExit) as code:
        main(["finetune", "task=embed", "mode=frozen", f"data={bbc_pairs}", f"out_dir={tmp_path / 'r'}"])
    assert code.value.code == 2 and "mode=frozen would train nothing; use mode=full or mode=lora" in \
        capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_labels_objective_takes_bad_rows_warn_as_its_error_says(tmp_path, tiny):
    rows = "".join(f"news story number {i} about {t},{t}\n" for i in range(12) for t in ("sport", "tax"))
    (tmp_path / "l.csv").write_text("text,label\n" + rows + ",sport\n", encoding="utf-8")
    cfg = dict(objective="labels", data=str(tmp_path / "l.csv"), init=str(tiny), max_steps=1, batch_size=4,
               progress="off")
    with pytest.raises(InputDataError, match="pass bad_rows=warn to skip them"):
        train_embeddings(EmbedConfig(out_dir=str(tmp_path / "a"), **cfg))
    metrics = train_embeddings(EmbedConfig(out_dir=str(tmp_path / "b"), bad_rows="warn", **cfg))
    assert metrics["train_examples"] > 0


@pytest.mark.slow
def test_chunked_pairs_train_on_whole_articles_as_encode_reads_them(tmp_path, tiny):
    from encoderlab.artifacts.text_encoder import text_windows
    from encoderlab.data.catalog import load_dataset
    from encoderlab.models.heads import EncoderWithHead, ProjectionHead
    from encoderlab.nn.windows import LongText, WindowPool
    from encoderlab.tasks.embed import _embed_collate, text_vectors

    articles = load_dataset("bbc-news").train.texts[:80]
    path = tmp_path / "headline_article.jsonl"  # headline -> the rest of the article, hundreds of pieces long
    path.write_text("".join(json.dumps({"anchor": a.split("\n")[0], "positive": a.split("\n", 1)[1]}) + "\n"
                            for a in articles), encoding="utf-8")
    cfg = EmbedConfig(data=str(path), init=str(tiny), mode="full", out_dir=str(tmp_path / "run"), split="0.75,0.25,0",
                      max_length=32, long_text="chunk", stride=24, batch_size=10, epochs=3, lr=1e-3, progress="off",
                      log_every=2)
    metrics = train_embeddings(cfg)
    assert metrics["long_text"] == {"mode": "chunk", "window": 32, "stride": 24, "pooling": "mean"}
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]
    assert losses[-1] < 0.8 * losses[0]  # it learns through the pooled windows (20 held-out pairs are too few
    assert 0.0 <= metrics["validation_recall_at_1"] <= 1.0  # for recall to show it reliably on a tiny model)
    # the vectors training pooled are the vectors encode(long_text="chunk") gives with the saved encoder
    encoder = TextEncoder.from_pretrained(tmp_path / "run" / "final")
    texts = [articles[0], "A short headline"]
    windows, counts = text_windows(encoder.tokenizer, texts, LongText("chunk", 32, 24))
    assert counts[0] > 10 and counts[1] == 1
    items = [{"text": windows[:counts[0]]}, {"text": windows[counts[0]:]}]
    model = EncoderWithHead(encoder.bert, ProjectionHead(32, None, "mean", normalize=True)).eval()
    with torch.no_grad():
        trained_view = text_vectors(model, _embed_collate(encoder.tokenizer, 32)(items), "text", WindowPool("mean"))
    encoded = encoder.encode(texts, max_length=32, long_text="chunk", stride=24)
    np.testing.assert_allclose(trained_view.numpy(), encoded, atol=1e-5)


def test_attention_over_windows_is_for_classifiers(tmp_path, bbc_pairs):
    from encoderlab.errors import ConfigError

    with pytest.raises(ConfigError, match="window_pooling=attention learns weights of a classifier's head"):
        EmbedConfig(data=str(bbc_pairs), out_dir=str(tmp_path), long_text="chunk", window_pooling="attention")
