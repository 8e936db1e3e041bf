"""Recommenders: `encoderlab recommend` (train and measure) and `encoderlab recommend-predict` (use a run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputDataError
from .common import TRAINING_COMMAND, ConfigFile, Overrides, ResumeDir, app, echo_final, echo_metrics


@app.command(context_settings=TRAINING_COMMAND)
def recommend(overrides: Overrides = None, config: ConfigFile = None, resume: ResumeDir = None) -> None:
    """Train a recommender encoder (Mult-VAE/DAE, AutoRec, two-tower) and score it beside the baselines on the
    same split (see docs/recommendation.md).

    \b
    encoderlab recommend --config configs/ml100k-multvae.yaml
    encoderlab recommend data=clicks.csv user_column=uid item_column=sku rating_column=stars
    \b
    Main keys: data=ml-100k|FILE  user_column= item_column= rating_column= timestamp_column=
    user_features=FILE item_features=FILE item_text_column=
    protocol=strong|leave-last-out|cold-start|rating  model.kind=mult-vae|mult-dae|autorec|two-tower
    out_dir=  epochs=  batch_size=  lr=  threads=
    (an unknown key is an error that lists every valid one)"""
    from ..tasks.recommend import RecommendConfig, train_recommender
    from ..training import run_task

    metrics = run_task(train_recommender, RecommendConfig, config, overrides or [], resume_dir=resume)
    shown = [k for k in ("test_rmse", "biased_mf_test_rmse", "test_ndcg@100", "ease_test_ndcg@100",
                         "itemknn_test_ndcg@100", "popularity_test_ndcg@100", "test_recall@20",
                         "content_knn_test_recall@20", "popularity_test_recall@20") if k in metrics]
    echo_metrics(metrics, (*shown, "step"))
    echo_final(metrics)


@app.command("recommend-predict")
def recommend_predict(
    model: Annotated[Path, typer.Option("--model", "-m", help="OUT_DIR of `encoderlab recommend` (or final/).")],
    user: Annotated[list[str] | None, typer.Option("--user", "-u", help="A user id (repeat for several).")] = None,
    history: Annotated[str | None, typer.Option(help="A new user's item ids, comma-separated (Mult-VAE/DAE).")]
    = None,
    top: Annotated[int, typer.Option(help="How many items to recommend.")] = 10,
    include_seen: Annotated[bool, typer.Option(help="Also rank items the user has already seen.")] = False,
) -> None:
    """Print one JSON line per user: the top unseen items and their scores."""
    from ..artifacts.recommender import Recommender

    if top < 1:
        raise InputDataError(f"--top {top} must be at least 1")
    if not user and not history:
        raise InputDataError("give --user ID (repeatable) or --history ITEM,ITEM,... for a new user")
    rec = Recommender.from_dir(model)
    for u in user or []:
        items = rec.recommend(u, top=top, exclude_seen=not include_seen)
        typer.echo(json.dumps({"user": u, "items": [i for i, _ in items], "scores": [round(s, 5) for _, s in items]},
                              ensure_ascii=False))  # ids as written, like predict's labels
    if history:
        given = [h.strip() for h in history.split(",") if h.strip()]
        items = rec.recommend_history(given, top=top)
        typer.echo(json.dumps({"history": given, "items": [i for i, _ in items],
                               "scores": [round(s, 5) for _, s in items]}, ensure_ascii=False))


@app.command("recommend-encode")
def recommend_encode(
    model: Annotated[Path, typer.Option("--model", "-m", help="OUT_DIR of `encoderlab recommend` (or final/).")],
    input: Annotated[Path, typer.Option("--input", "-i", help="A .txt file of ids, one per line.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the (N, d) float32 .npy.")],
    side: Annotated[str, typer.Option(help="user or item: whose ids the file holds.")] = "user",
) -> None:
    """Write the vectors of users or items (one id per line) as a .npy, in input order."""
    from ..artifacts.recommender import Recommender
    from ..files import atomic_save_npy

    if output.suffix.lower() != ".npy":
        raise InputDataError(f"--output {str(output)!r} must end in .npy")
    if not input.is_file():
        raise InputDataError(f"--input {str(input)!r} does not exist; give a .txt file with one id per line")
    ids = [line.strip() for line in input.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not ids:
        raise InputDataError(f"--input {str(input)!r} holds no ids; give one {side} id per line")
    vectors = Recommender.from_dir(model).encode(ids, side=side)
    atomic_save_npy(output, vectors)
    typer.echo(f"wrote {vectors.shape[0]} x {vectors.shape[1]} {side} vectors to {output}", err=True)
