"""Emoji image-text retrieval and zero-shot categories: the ViT and the CNN image tower side by side.

    python benchmarks/multimodal_emoji.py                  # runs into runs/mm-emoji/, prints the tables
    python benchmarks/multimodal_emoji.py --table-only

Both runs: configs/emoji-clip.yaml (locked minilm text tower, 32x32 images, 15 epochs, batch 128, 1 thread);
15 % of the 1,911 base emoji are held out with all their skin-tone variants. A finished run is not run again.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from encoderlab.tasks.image_text import ImageTextConfig, train_image_text  # noqa: E402
from encoderlab.training import run_task  # noqa: E402

CONFIG = ROOT / "configs" / "emoji-clip.yaml"
KINDS = ("vit", "cnn")


def tables(out: Path) -> str:
    files = {k: out / k / "metrics.json" for k in KINDS}
    done = {k: json.loads(path.read_text()) for k, path in files.items() if path.is_file()}
    if not done:
        return "(no finished runs)"
    first = next(iter(done.values()))
    lines = [f"Held out: {first['test_pairs']} images of {first['test_groups']} base emoji; trained on "
             f"{first['train_pairs']} pairs.", "",
             "| image tower | direction | R@1 | R@5 | R@10 | median rank |", "|---|---|---|---|---|---|"]
    for kind, m in done.items():
        for direction in ("text_to_image", "image_to_text"):
            lines.append(f"| {kind} | {direction.replace('_to_', ' → ')} | {m[f'{direction}_recall@1']:.3f} | "
                         f"{m[f'{direction}_recall@5']:.3f} | {m[f'{direction}_recall@10']:.3f} | "
                         f"{m[f'{direction}_median_rank']:.0f} |")
    lines.append(f"| chance | either | {first['chance_recall@1']:.3f} | {first['chance_recall@5']:.3f} | "
                 f"{first['chance_recall@10']:.3f} | {first['test_pairs'] / 2:.0f} |")
    lines += ["", f"| zero-shot category ({first['categories']} categories) | accuracy |", "|---|---|"]
    for kind, m in done.items():
        lines.append(f"| dual encoder, {kind} image tower | {m['zero_shot_category_accuracy']:.3f} |")
    lines += [f"| chance (1 / {first['categories']}) | {first['chance_category_accuracy']:.3f} |",
              f"| majority category | {first['majority_category_accuracy']:.3f} |",
              f"| nearest training image in pixel space | {first['pixel_nearest_neighbour_category_accuracy']:.3f} |",
              f"| nearest name (text tower alone, the emoji's own name) | "
              f"{first['nearest_name_category_accuracy']:.3f} |"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "runs" / "mm-emoji"))
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    if not args.table_only:
        for kind in KINDS:
            if not (out / kind / "metrics.json").is_file():
                print(f"== {kind}", flush=True)
                run_task(train_image_text, ImageTextConfig, CONFIG,
                         [f"model.image.kind={kind}", f"out_dir={out / kind}", "progress=lines"])
    print(tables(out))


if __name__ == "__main__":
    main()
