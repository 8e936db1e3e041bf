"""The recommend task end to end on the bundled MovieLens slice: every protocol, its baselines, the saved
Recommender reloading to the same numbers, and bad input."""

import json
from pathlib import Path

import numpy as np
import pytest

from encoderlab.errors import ConfigError, InputDataError
from encoderlab.tasks.recommend import RecommendConfig, train_recommender
from encoderlab.training import run_task

SLICE = Path(__file__).parents[1] / "data" / "ml100k-slice"
DATA = [f"data={SLICE / 'ml-100k.inter'}", "user_column=user_id", "item_column=item_id", "rating_column=rating",
        "timestamp_column=timestamp", f"user_features={SLICE / 'ml-100k.user'}",
        f"item_features={SLICE / 'ml-100k.item'}", "item_text_column=movie_title", "threads=1", "progress=off"]


def run(out_dir, *overrides):
    return run_task(train_recommender, RecommendConfig, None, [*DATA, f"out_dir={out_dir}", *overrides])


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vae") / "run"
    metrics = run(out, "protocol=strong", "heldout=0.15", "model.kind=mult-vae", "model.hidden_dim=32",
                  "model.latent_dim=8", "epochs=6", "batch_size=16", "eval_every=6", "lr=0.003")
    return out, metrics


@pytest.mark.slow
def test_mult_vae_run_reports_the_model_and_baselines_on_one_split(vae_run):
    out, metrics = vae_run
    for name in ("test", "popularity_test", "itemknn_test", "ease_test"):
        for metric in ("recall@20", "ndcg@10", "ndcg@100", "coverage@20"):
            assert 0.0 <= metrics[f"{name}_{metric}"] <= 1.0
    from encoderlab.data.interactions import read_interactions

    data = read_interactions(SLICE / "ml-100k.inter", rating_column="rating")
    eligible = int((data.positives(3.5).matrix().row_lengths() >= 5).sum())  # users with 5+ positives
    assert metrics["test_users"] == metrics["split_test_users"] == round(0.15 * eligible)
    assert metrics["ease_lambda"] in RecommendConfig().ease_lambdas
    assert (out / "final" / "recommender.json").is_file() and (out / "metrics.json").is_file()


@pytest.mark.slow
def test_saved_recommender_reloads_and_recommends_the_same(vae_run, tmp_path):
    from encoderlab.artifacts.recommender import Recommender
    from encoderlab.data.interactions import strong_generalization
    from encoderlab.evaluation.recommendation import evaluate_top_n
    from encoderlab.tasks.recommend import load_data

    out, metrics = vae_run
    rec = Recommender.from_dir(out)
    # The reloaded model ranks the test users exactly as the trained one did (same test metrics).
    cfg = RecommendConfig(data=str(SLICE / "ml-100k.inter"), rating_column="rating", timestamp_column="timestamp")
    split = strong_generalization(load_data(cfg), heldout=0.15, seed=0)
    inputs, targets, users, _ = split.evaluation("test")
    again = evaluate_top_n(lambda rows: rec.scores_for(inputs.take(rows), users[rows]), inputs, targets)
    assert again["ndcg@100"] == pytest.approx(metrics["test_ndcg@100"], abs=1e-12)
    user = rec.info.user_ids[int(users[0])]
    top = rec.recommend(user, top=10)
    assert len(top) == 10 and [s for _, s in top] == sorted((s for _, s in top), reverse=True)
    seen = {rec.info.item_ids[i] for i in rec.history.row(rec.user_index[user])[0]}
    assert seen and not seen & {item for item, _ in top}  # seen items are never recommended
    assert set(seen) & {i for i, _ in rec.recommend(user, top=200, exclude_seen=False)}
    copy = Recommender.from_dir(rec.save(tmp_path / "copy"))
    assert copy.recommend(user, top=10) == top
    np.testing.assert_array_equal(copy.encode([user]), rec.encode([user]))
    assert rec.encode([user, user]).shape == (2, 8) and rec.encode(["1", "2"], side="item").shape == (2, 32)
    assert rec.recommend_history(["1", "50"], top=3)[0][0] not in ("1", "50")


@pytest.mark.slow
def test_saved_recommender_names_bad_ids(vae_run):
    from encoderlab.artifacts.recommender import Recommender

    rec = Recommender.from_dir(vae_run[0])
    with pytest.raises(InputDataError, match="user 'nobody' is not in this model"):
        rec.recommend("nobody")
    with pytest.raises(InputDataError, match=r"items \['99999'\] are not in this model"):
        rec.score("1", ["1", "99999"])
    with pytest.raises(InputDataError, match="predict\\(\\) gives ratings"):
        rec.predict("1", ["1"])


def test_autorec_rating_run_and_predictions(tmp_path):
    from encoderlab.artifacts.recommender import Recommender

    metrics = run(tmp_path / "ar", "protocol=rating", "model.kind=autorec", "model.hidden_dim=16", "epochs=3",
                  "batch_size=64", "autorec_reg=10", "mf_iterations=3", "mf_factors=8")
    assert metrics["test_ratings"] == 8126 - round(0.8 * 8126) - round(0.1 * 8126) and 0.5 < metrics["test_rmse"] < 2.0
    assert 0.5 < metrics["biased_mf_test_rmse"] < 2.0 and metrics["global_mean_test_rmse"] > 0.5
    rec = Recommender.from_dir(tmp_path / "ar")
    ratings = rec.predict("1", ["1", "2", "3"])
    assert ratings.shape == (3,) and ((1 <= ratings) & (ratings <= 5)).all()
    # the reloaded model predicts the test ratings exactly as the run scored them
    from encoderlab.data.interactions import rating_split
    from encoderlab.evaluation.recommendation import rmse
    from encoderlab.models.recommender import RecommenderConfig
    from encoderlab.tasks.recommend import load_data

    cfg = RecommendConfig(data=str(SLICE / "ml-100k.inter"), rating_column="rating", protocol="rating",
                          model=RecommenderConfig(kind="autorec"))
    test = rating_split(load_data(cfg), seed=0).test
    table = np.clip(rec._all_item_reconstructions(), 1, 5)  # (items, users)
    assert rmse(table[test.item, test.user], test.rating) == pytest.approx(metrics["test_rmse"], abs=1e-6)


@pytest.mark.slow
def test_two_tower_cold_start_run(tmp_path):
    from encoderlab.artifacts.recommender import Recommender

    metrics = run(tmp_path / "tt", "protocol=cold-start", "model.kind=two-tower", "model.latent_dim=16",
                  "title=words", "epochs=2", "batch_size=128", "model.id_dropout=0.5")
    for name in ("test", "popularity_test", "random_test", "feature_popularity_test", "content_knn_test"):
        assert 0.0 <= metrics[f"{name}_ndcg@10"] <= 1.0
    rec = Recommender.from_dir(tmp_path / "tt")
    assert rec.encode(["1"], side="item").shape == (1, 16)
    np.testing.assert_allclose(np.linalg.norm(rec.encode(["1", "2"]), axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("overrides, error, message", [
    (["model.kind=autorec", "protocol=strong"], ConfigError, "does not fit protocol=strong"),
    (["protocol=rating", "model.kind=autorec", "rating_column=stars"], InputDataError,
     "no column 'stars'.*rating_column="),
    (["protocol=strong", "model.n_items=5"], ConfigError, "model.n_items=5 but the data gives"),
    (["protocol=leave-last-out", "folds=5"], ConfigError, "cross-validation is for protocol=strong"),
    (["protocol=strong", "folds=5", "fold=5"], ConfigError, "0 <= fold < folds"),
])
def test_bad_configs_and_columns(tmp_path, overrides, error, message):
    with pytest.raises(error, match=message):
        run(tmp_path / "bad", *overrides)
    assert not (tmp_path / "bad").exists()  # nothing left behind


def test_a_cross_validation_fold_writes_every_models_per_user_scores(tmp_path):
    """folds=K fold=F: the test users are fold F; per_user.json lists them with each model's and baseline's
    NDCG@100, which average to the metrics; the baselines' EASE lambda and ItemKNN k come from validation."""
    from encoderlab.data.interactions import strong_generalization
    from encoderlab.tasks.recommend import load_data

    metrics = run(tmp_path / "f1", "protocol=strong", "folds=3", "fold=1", "heldout=0.15", "model.kind=mult-dae",
                  "model.hidden_dim=16", "model.latent_dim=8", "epochs=2", "batch_size=16", "eval_every=2",
                  "knn_neighbours=[5,20]", "ease_lambdas=[10,100]")
    per_user = json.loads((tmp_path / "f1" / "per_user.json").read_text())
    cfg = RecommendConfig(data=str(SLICE / "ml-100k.inter"), rating_column="rating")
    data = load_data(cfg)
    split = strong_generalization(data, heldout=0.15, folds=3, fold=1)
    assert per_user["users"] == [data.user_ids[u] for u in split.test_users] and metrics["folds"] == 3
    for name, prefix in (("model", ""), ("ease", "ease_"), ("itemknn", "itemknn_"), ("popularity", "popularity_")):
        values = per_user["ndcg@100"][name]
        assert len(values) == len(per_user["users"]) == metrics["test_users"]
        assert np.mean(values) == pytest.approx(metrics[f"{prefix}test_ndcg@100"])
    assert metrics["itemknn_k"] in (5, 20) and metrics["ease_lambda"] in (10, 100)
    assert 0 < metrics["ease_val_ndcg@100"] <= 1


def test_same_config_and_seed_give_the_same_bits(tmp_path):
    args = ("protocol=leave-last-out", "model.kind=two-tower", "model.latent_dim=8", "title=words", "epochs=1",
            "batch_size=256", "baselines=false")
    first, second = run(tmp_path / "a", *args), run(tmp_path / "b", *args)
    assert first["test_ndcg@100"] == second["test_ndcg@100"]
    weights = [(tmp_path / d / "final" / "model.safetensors").read_bytes() for d in ("a", "b")]
    assert weights[0] == weights[1]


def test_a_users_own_csv_files_with_features(tmp_path):
    """The generic path: interactions .csv with its own column names, item features with '|'-separated genres
    and a title column; implicit feedback (no rating column)."""
    lines = (SLICE / "ml-100k.inter").read_text().splitlines()[1:]
    (tmp_path / "clicks.csv").write_text("customer,product\n" + "".join(
        f"c{u},p{i}\n" for u, i, rating, _ in (line.split("\t") for line in lines) if float(rating) >= 4))
    items = (SLICE / "ml-100k.item").read_text().splitlines()[1:]
    rows = [line.split("\t") for line in items]
    (tmp_path / "products.csv").write_text("product,name,year,genres\n" + "".join(
        f'p{i},"{title}",{year},{genres.replace(" ", "|")}\n' for i, title, year, genres in rows))
    from encoderlab.data.interactions import read_interactions

    data = read_interactions(tmp_path / "clicks.csv", user_column="customer", item_column="product",
                             item_features=tmp_path / "products.csv", item_text_column="name")
    toy = data.item_features.entity_tokens(data.item_ids.index("p1"))
    assert {"genres=Animation", "genres=Comedy", "year=1995", "name~toy"} <= set(toy) and not data.explicit
    metrics = run_task(train_recommender, RecommendConfig, None, [
        f"data={tmp_path / 'clicks.csv'}", "user_column=customer", "item_column=product",
        f"item_features={tmp_path / 'products.csv'}", "item_text_column=name", "protocol=cold-start",
        "model.kind=two-tower", "model.latent_dim=8", "title=words", "epochs=1", "batch_size=128", "threads=1",
        "progress=off", f"out_dir={tmp_path / 'run'}"])
    assert metrics["test_users"] > 0 and 0 <= metrics["test_recall@20"] <= 1
    assert "content_knn_test_recall@20" in metrics  # the features reached the baselines too
    with pytest.raises(InputDataError, match="leave-last-out needs timestamps"):
        run_task(train_recommender, RecommendConfig, None, [
            f"data={tmp_path / 'clicks.csv'}", "user_column=customer", "item_column=product",
            "protocol=leave-last-out", f"out_dir={tmp_path / 'run2'}"])


@pytest.mark.slow
def test_registry_identifies_and_loads_the_run_and_damage_is_named(vae_run, tmp_path):
    import shutil

    from encoderlab.artifacts.recommender import Recommender
    from encoderlab.artifacts.registry import identify, load
    from encoderlab.errors import CheckpointError

    out, _ = vae_run
    assert identify(out).kind.name == identify(out / "final").kind.name == "recommender"
    loaded = load(out)
    assert isinstance(loaded, Recommender)
    assert loaded.recommend("1", top=5) == Recommender.from_dir(out / "final").recommend("1", top=5)
    damaged = tmp_path / "damaged"
    shutil.copytree(out / "final", damaged)
    info = json.loads((damaged / "recommender.json").read_text())
    del info["item_ids"]
    (damaged / "recommender.json").write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match="recommender.json has no item_ids"):
        Recommender.from_dir(damaged)
    (damaged / "recommender.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="recommender.json is not valid JSON"):
        load(damaged)
