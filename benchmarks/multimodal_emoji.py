"""Emoji image-text retrieval and zero-shot categories: the ViT and the CNN image tower side by side.

    python benchmarks/multimodal_emoji.py                  # runs into runs/mm-emoji/, prints the tables
    python benchmarks/multimodal_emoji.py --table-only
    python benchmarks/multimodal_emoji.py --prompts        # text side only: category prompts vs prompt ensembles

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


def prompt_study() -> str:
    """The nearest-name baseline (the pretrained text tower reading each emoji's own name, no image, no
    training) on the validation and test pairs of configs/emoji-clip.yaml's split, with three ways to make a
    category's vector: its prompt alone; the mean of its prompt and one prompt per subcategory name; the best
    (max) of them; and the same two without the Component category's one subcategory ("skin tone")."""
    import numpy as np

    from encoderlab.artifacts.text_encoder import TextEncoder
    from encoderlab.config import load_config
    from encoderlab.data.images import emoji_root, emoji_subcategories, split_by_group
    from encoderlab.evaluation.retrieval import zero_shot_accuracy
    from encoderlab.tasks.image_text import class_means, ensemble_prompts, load_pairs

    cfg = load_config(ImageTextConfig, CONFIG)
    pairs, _ = load_pairs("emoji")
    rest, test = split_by_group(pairs, cfg.test_fraction, cfg.split_seed)
    _, val = split_by_group(rest, cfg.val_fraction, cfg.split_seed + 1)
    encoder = TextEncoder.from_pretrained(cfg.text_model)
    subs = emoji_subcategories(emoji_root())
    names = sorted(set(pairs.categories))
    lines = ["| category vector | validation | test |", "|---|---|---|"]
    rows: dict[str, list[float]] = {}
    for split in (val, test):
        labels = np.array([names.index(c) for c in split.categories])
        vectors = encoder.encode(split.texts, shards=1)
        rows.setdefault(f'prompt "{cfg.category_prompt}"', []).append(zero_shot_accuracy(
            vectors, encoder.encode([cfg.category_prompt.format(c) for c in names], shards=1), labels))
        for tag, descriptions in (("", subs), (", without Component", {k: v for k, v in subs.items()
                                                                       if k != "Component"})):
            texts, owner = ensemble_prompts(names, cfg.category_prompt, descriptions, cfg.description_prompt)
            sims = vectors @ encoder.encode(texts, shards=1).T
            best = np.stack([sims[:, owner == k].max(1) for k in range(len(names))], 1)
            rows.setdefault(f"mean of prompt + subcategory prompts{tag}", []).append(zero_shot_accuracy(
                vectors, class_means(encoder.encode(texts, shards=1), owner, len(names)), labels))
            rows.setdefault(f"max over prompt + subcategory prompts{tag}", []).append(
                float((best.argmax(1) == labels).mean()))
    lines += [f"| {name} | {a:.3f} | {b:.3f} |" for name, (a, b) in rows.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "runs" / "mm-emoji"))
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--prompts", action="store_true", help="only the text-side prompt study")
    args = parser.parse_args()
    out = Path(args.out)
    if args.prompts:
        print(prompt_study())
        return
    if not args.table_only:
        for kind in KINDS:
            if not (out / kind / "metrics.json").is_file():
                print(f"== {kind}", flush=True)
                run_task(train_image_text, ImageTextConfig, CONFIG,
                         [f"model.image.kind={kind}", f"out_dir={out / kind}", "progress=lines"])
    print(tables(out))


if __name__ == "__main__":
    main()
