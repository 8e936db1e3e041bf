"""pytorch-widedeep's own Wide & Deep text + tabular model, side by side with ours on the SAME clothing split.

pytorch-widedeep 1.7.0 needs numpy<2 (ours has numpy 2), so it runs in a second environment, in two steps:

    python benchmarks/multimodal_widedeep.py export                      # our venv: the split, as plain arrays
    WD=/tmp/wdvenv/bin/python; OMP_NUM_THREADS=1 $WD benchmarks/multimodal_widedeep.py run --label recommended
    OMP_NUM_THREADS=1 $WD benchmarks/multimodal_widedeep.py run --label rating

`export` writes runs/mm-clothing/split-<label>.npz: the train / validation / test rows of
configs/multimodal-clothing-full.yaml (all 18,114 training rows; split_seed=0), i.e. the rows, columns and
test set of every other row of the table in docs/multimodal.md. `run` fits widedeep's model on them and writes
runs/mm-clothing/<label>-widedeep/test_probabilities.npy and metrics.json, which
`benchmarks/multimodal_clothing.py --full` puts in its table.

The model follows widedeep's own recipes (its README's wide + deeptabular + deeptext WideDeep, and the
BasicRNN settings of its clothing-reviews text example: vocabulary 5,000, min_freq 5, 300-d embeddings,
3-layer LSTM of 64, dropout 0.2, head [32], Adam lr 0.01, batch 256): Wide over the one-hot categories,
TabMlp over category embeddings + the two numbers, BasicRNN over the review text (Title + Review Text, 90
words). Up to 10 epochs with early stopping on the validation loss (patience 2, best weights restored);
seed 0, one thread.

The environment (not part of encoderlab's install; see docs/multimodal.md):
    python3.11 -m venv /tmp/wdvenv
    echo /work/main/.venv/lib/python3.11/site-packages > /tmp/wdvenv/lib/python3.11/site-packages/zz_main.pth
    echo torch==2.13.0 > c.txt   # keep OUR CPU torch (the .pth puts it on the path after the venv's own packages)
    /tmp/wdvenv/bin/python -m pip install -c c.txt pytorch-widedeep==1.7.0 "numpy<2" torchvision==0.28.0 \
        opencv-contrib-python==4.11.0.86 "pandas<3"
PyPI's torchvision is built for CUDA torch: its operators do not load against the CPU torch, and
torchvision 0.28.0 then fails at import registering fake kernels for them (`operator torchvision::nms does not
exist`). The text + tab model uses no torchvision operator; in that throwaway venv we guarded the two
`@torch.library.register_fake("torchvision::nms" / "qnms")` decorators in torchvision/_meta_registrations.py
with `torchvision.extension._has_ops()`, as the file already does for its other operators.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "runs" / "mm-clothing"
LABELS = {"recommended": "Recommended IND", "rating": "Rating"}
SPLITS = ("train", "val", "test")


def export(out: Path) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from encoderlab.config import load_config
    from encoderlab.tasks.multimodal import MultimodalConfig, prepare_data

    for short, column in LABELS.items():
        cfg = load_config(MultimodalConfig, ROOT / "configs" / "multimodal-clothing-full.yaml",
                          [f"label_column={column}", "val_limit=null"])
        data = prepare_data(cfg)
        arrays = {}
        for name, rows in zip(SPLITS, (data.train, data.val, data.test), strict=True):
            arrays |= {f"{name}_texts": np.array([t.strip() for t in rows.texts]), f"{name}_categories":
                       rows.categories, f"{name}_numbers": rows.numbers, f"{name}_labels": rows.labels}
        spec = data.features.spec
        arrays |= {"categorical_columns": np.array(spec.categorical_columns),
                   "numeric_columns": np.array(spec.numeric_columns), "classes": np.array(data.features.label_names)}
        out.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out / f"split-{short}.npz", **arrays)
        print(f"{out / f'split-{short}.npz'}: " + ", ".join(f"{s} {len(arrays[f'{s}_labels'])}" for s in SPLITS))


def frames(split: np.lib.npyio.NpzFile):
    import pandas as pd

    cats, nums = [str(c) for c in split["categorical_columns"]], [str(c) for c in split["numeric_columns"]]
    out = {}
    for name in SPLITS:
        df = pd.DataFrame(split[f"{name}_categories"].astype(str), columns=cats)
        for j, col in enumerate(nums):
            df[col] = split[f"{name}_numbers"][:, j].astype("float64")
        df["text"] = split[f"{name}_texts"].astype(str)
        out[name] = (df, split[f"{name}_labels"].astype("int64"))
    return out, cats, nums


def run(short: str, out: Path, epochs: int, limit: int | None = None) -> None:
    import torch
    from pytorch_widedeep import Trainer
    from pytorch_widedeep.callbacks import EarlyStopping
    from pytorch_widedeep.metrics import Accuracy
    from pytorch_widedeep.models import BasicRNN, TabMlp, Wide, WideDeep
    from pytorch_widedeep.preprocessing import TabPreprocessor, TextPreprocessor, WidePreprocessor

    torch.set_num_threads(1)
    cpu_start = time.process_time()
    split = np.load(out / f"split-{short}.npz")
    data, cats, nums = frames(split)
    classes = [str(c) for c in split["classes"]]
    (train, y_train), (val, y_val), (test, _) = data["train"], data["val"], data["test"]
    if limit:  # a smoke run on the first `limit` training rows; its results go nowhere
        train, y_train, out = train.iloc[:limit], y_train[:limit], out / "smoke"

    wide_prep = WidePreprocessor(wide_cols=cats)
    tab_prep = TabPreprocessor(cat_embed_cols=cats, continuous_cols=nums)
    text_prep = TextPreprocessor(text_col="text", max_vocab=5000, min_freq=5, maxlen=90, n_cpus=1, verbose=0)
    x = {"train": {"X_wide": wide_prep.fit_transform(train), "X_tab": tab_prep.fit_transform(train),
                   "X_text": text_prep.fit_transform(train)}}
    for name, df in (("val", val), ("test", test)):
        x[name] = {"X_wide": wide_prep.transform(df), "X_tab": tab_prep.transform(df),
                   "X_text": text_prep.transform(df)}
    binary = len(classes) == 2
    pred_dim = 1 if binary else len(classes)
    wide = Wide(input_dim=int(np.unique(x["train"]["X_wide"]).max()) + 1, pred_dim=pred_dim)
    tab = TabMlp(column_idx=tab_prep.column_idx, cat_embed_input=tab_prep.cat_embed_input, continuous_cols=nums,
                 mlp_hidden_dims=[64, 32])
    rnn = BasicRNN(vocab_size=len(text_prep.vocab.itos), embed_dim=300, hidden_dim=64, n_layers=3, rnn_dropout=0.2,
                   head_hidden_dims=[32])
    model = WideDeep(wide=wide, deeptabular=tab, deeptext=rnn, pred_dim=pred_dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    trainer = Trainer(model, objective="binary" if binary else "multiclass", optimizers=optimizer, metrics=[Accuracy],
                      callbacks=[EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)], seed=0,
                      verbose=0, num_workers=0)
    trainer.fit(X_train={**x["train"], "target": y_train}, X_val={**x["val"], "target": y_val}, n_epochs=epochs,
                batch_size=256)
    probs = trainer.predict_proba(**x["test"], batch_size=256)
    run_dir = out / f"{short}-widedeep"
    run_dir.mkdir(parents=True, exist_ok=True)
    np.save(run_dir / "test_probabilities.npy", probs.astype(np.float32))
    y_test = split["test_labels"]
    metrics = {"test_accuracy": float((probs.argmax(1) == y_test).mean()), "classes": classes,
               "epochs_run": len(trainer.history.get("train_loss", [])), "train_rows_used": len(y_train),
               "process_cpu_seconds": round(time.process_time() - cpu_start, 1),
               "versions": {"pytorch_widedeep": __import__("pytorch_widedeep").__version__,
                            "torch": torch.__version__, "numpy": np.__version__}}
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=["export", "run"])
    parser.add_argument("--label", choices=list(LABELS), default="recommended")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--limit", type=int, default=None, help="smoke run: only this many training rows")
    args = parser.parse_args()
    if args.step == "export":
        export(Path(args.out))
    else:
        run(args.label, Path(args.out), args.epochs, args.limit)


if __name__ == "__main__":
    main()
