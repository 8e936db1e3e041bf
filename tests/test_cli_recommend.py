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
