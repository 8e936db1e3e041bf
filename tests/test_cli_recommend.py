"""`encoderlab recommend` and `recommend-predict` on the bundled MovieLens slice."""

import json
from pathlib import Path

import numpy as np
import pytest

from encoderlab.artifacts.registry import describe
from encoderlab.cli import main

SLICE = Path(__file__).parent / "data" / "ml100k-slice"


def run_cli(*args):
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code


@pytest.mark.slow
def test_recommend_trains_then_recommend_predict_prints_unseen_items(tmp_path, capsys):
    out = tmp_path / "run"
    code = run_cli("recommend", f"data={SLICE / 'ml-100k.inter'}", "rating_column=rating", "protocol=strong",
                   "heldout=0.15", "model.kind=mult-dae", "model.hidden_dim=16", "model.latent_dim=8", "epochs=2",
                   "batch_size=16", "threads=1", "progress=off", f"out_dir={out}")
    assert code in (0, None)
    err = capsys.readouterr().err
    assert "test_ndcg@100=" in err and "ease_test_ndcg@100=" in err
    assert describe(out).startswith("recommender")
    assert run_cli("recommend-predict", "--model", str(out), "--user", "1", "--user", "2", "--top", "5") in (0, None)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["user"] for line in lines] == ["1", "2"] and all(len(line["items"]) == 5 for line in lines)
    from encoderlab.artifacts.recommender import Recommender

    rec = Recommender.from_dir(out)
    seen = {rec.info.item_ids[i] for i in rec.history.row(rec.user_index["1"])[0]}
    assert not seen & set(lines[0]["items"])
    assert run_cli("predict", "--model", str(out), "--user", "1", "--user", "2", "--top", "5") in (0, None)
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == lines  # the generic command too
    assert run_cli("recommend-predict", "--model", str(out), "--user", "nobody") == 2
    assert "user 'nobody' is not in this model" in capsys.readouterr().err
    (tmp_path / "items.txt").write_text("1\n50\n")
    assert run_cli("recommend-encode", "--model", str(out), "--input", str(tmp_path / "items.txt"), "--side", "item",
                   "--output", str(tmp_path / "items.npy")) in (0, None)
    np.testing.assert_array_equal(np.load(tmp_path / "items.npy"), rec.encode(["1", "50"], side="item"))


def test_a_users_clicks_file_with_spaces_and_accents_in_ids(tmp_path, capsys):
    """A user's own interactions: ids with spaces and accents come back as written (they were \\u-escaped),
    and an unknown user is told about --history, the command's way to describe a new user."""
    import csv

    rng = np.random.default_rng(0)
    items = [f"café {i:02d}" for i in range(30)]
    with (tmp_path / "clicks.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["User Id", "Item SKU"])
        for u in range(40):
            for item in rng.choice(items[:15] if u % 2 else items[15:], 8, replace=False):
                writer.writerow([f"user {u}", item])
    out = tmp_path / "run"
    assert run_cli("recommend", f"data={tmp_path / 'clicks.csv'}", "user_column=User Id", "item_column=Item SKU",
                   "model.kind=mult-dae", "model.hidden_dim=8", "model.latent_dim=4", "max_steps=2", "batch_size=8",
                   "baselines=false", "threads=1", "progress=off", f"out_dir={out}") in (0, None)
    capsys.readouterr()
    assert run_cli("recommend-predict", "--model", str(out), "--user", "user 3", "--top", "2") in (0, None)
    out_text = capsys.readouterr().out
    line = json.loads(out_text)
    assert line["user"] == "user 3" and all(item.startswith("café ") for item in line["items"])
    assert "café" in out_text
    assert run_cli("recommend-predict", "--model", str(out), "--user", "nobody") == 2
    assert "--history ITEM,ITEM" in capsys.readouterr().err
