"""One self-contained HTML page for one or more run directories, to look at instead of reading JSON.

A run directory is the `out_dir` of any training command (pretrain, finetune, autoencode, distill, prune):
it holds `log.jsonl` (one line per logged step, plus eval lines), `metrics.json` (the final numbers),
`config.yaml`, evaluation files (`eval_*.json`, `evaluations/*.json`) and the run's own PNG plots. The page
gives, for all runs together, a table of their final metrics side by side and their curves on shared axes
(training loss, every eval metric, learning rate, throughput and memory); then, run by run, the evaluation
tables (accuracy, macro-F1, per-class precision/recall/F1), the run's plots and its config. Pictures are
embedded as base64 PNG, so the one file can be mailed or opened anywhere.

    path = build_report(["runs/tweets", "runs/tweets-lora"], "runs/compare.html")
    encoderlab report runs/tweets runs/tweets-lora --output runs/compare.html
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.ticker import EngFormatter  # noqa: E402

from ..errors import InputDataError  # noqa: E402
from ..files import atomic_write_text, file_in_the_way  # noqa: E402
from ..training.metrics_log import LOG_FILE  # noqa: E402

REPORT_FILE = "report.html"
FIRST_METRICS = ("step", "epoch", "train_loss", "best_eval_loss", "best_step")
"""Shown first in the summary table, in this order; the other numeric metrics follow alphabetically."""


@dataclass
class RunRecord:
    """What a run directory holds, read once."""

    name: str
    path: Path
    metrics: dict[str, Any]
    train: list[dict[str, Any]]
    """log.jsonl lines with a training loss, in step order."""
    evals: list[dict[str, Any]]
    """log.jsonl lines with eval_* values (evaluation during training)."""
    evaluations: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(file name, contents) of the run's evaluation files: `encoderlab evaluate`, end-of-run tests and
    `encoderlab robustness`."""
    images: list[Path] = field(default_factory=list)
    config_text: str | None = None
    bad_log_lines: int = 0


def read_run(directory: str | Path, name: str | None = None) -> RunRecord:
    """Read a run directory; a clear InputDataError if it is not one."""
    path = Path(directory)
    if not path.is_dir():
        what = "is a file, not a run directory" if path.exists() else "does not exist"
        raise InputDataError(f"'{directory}' {what}; give the out_dir of a training run (e.g. runs/my-run; a "
                             "shell pattern like runs/* also matches the runs' files, use runs/*/)")
    log, metrics_file = path / LOG_FILE, path / "metrics.json"
    if not log.is_file() and not metrics_file.is_file():
        parent = path.resolve().parent
        if (parent / LOG_FILE).is_file() or (parent / "metrics.json").is_file():
            hint = f" (it is inside the run '{path.parent}': give that directory)"
        elif (path / "config.json").is_file():
            hint = " (this looks like a model directory: give the run directory above it)"
        else:
            hint = ""
        raise InputDataError(f"'{directory}' is not an encoderlab run directory: it has no log.jsonl or "
                             f"metrics.json{hint}; give the out_dir of a pretrain, finetune, autoencode, "
                             "seq2seq, distill or prune run")
    train, evals, bad = [], [], 0
    if log.is_file():
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line) if line.strip() else None
            except json.JSONDecodeError:  # a run killed mid-line keeps every line before it
                bad += 1
                continue
            if not isinstance(record, dict) or "step" not in record:
                continue
            if any(key.startswith("eval_") for key in record):
                evals.append(record)
            if "loss" in record:
                train.append(record)
    metrics = _read_json(metrics_file) if metrics_file.is_file() else {}
    evaluations = [(p.name, data) for p in sorted([*path.glob("eval_*.json"), *path.glob("evaluations/*.json")])
                   if isinstance(data := _read_json(p), dict) and ("accuracy" in data or "rows" in data)]
    images = sorted([*path.glob("*.png"), *path.glob("evaluations/*.png")])
    config = path / "config.yaml"
    return RunRecord(name or path.resolve().name, path, metrics if isinstance(metrics, dict) else {},
                     train, evals, evaluations, images,
                     config.read_text(encoding="utf-8", errors="replace") if config.is_file() else None, bad)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputDataError(f"{path} is not valid JSON ({exc}); was the run interrupted while writing it? "
                             "Move the file aside and run the report again") from exc


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"
    if isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 80 else text[:77] + "…"
    return str(value)


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _smooth(values: list[float], weight: float = 0.9) -> list[float]:
    """Exponential moving average with bias correction (as TensorBoard's smoothing); None stays a gap."""
    out, average, count = [], 0.0, 0
    for value in values:
        if value is None or not math.isfinite(value):
            out.append(math.nan)
            continue
        count += 1
        average = weight * average + (1 - weight) * value
        out.append(average / (1 - weight ** count))
    return out


def curve_figures(runs: Sequence[RunRecord]) -> list[tuple[str, str]]:
    """(title, base64 PNG) of every curve the runs' logs hold, all runs on the same axes."""
    figures = []
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    def figure(keys: Sequence[str], source: str, title: str, log_y: bool = False) -> None:
        present = [k for k in keys if any(k in r for run in runs for r in getattr(run, source))]
        if not present:
            return
        fig, axes = plt.subplots(1, len(present), figsize=(max(6.0, min(5.0 * len(present), 15.0)), 3.4), squeeze=False)
        for ax, key in zip(axes[0], present, strict=True):
            for i, run in enumerate(runs):
                points = [(r["step"], r[key]) for r in getattr(run, source) if key in r]
                if not points:
                    continue
                steps, values = zip(*points, strict=True)
                values = [math.nan if v is None else v for v in values]
                color = colors[i % len(colors)]
                if source == "train" and key == "loss" and len(values) > 10:
                    ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
                    ax.plot(steps, _smooth(values), color=color, label=run.name)
                else:
                    ax.plot(steps, values, color=color, label=run.name, marker="." if len(values) < 30 else None)
            ax.set_title(key)
            ax.set_xlabel("step")
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 20k, not 20000 (ticks stay legible)
            ax.grid(alpha=0.3)
            if log_y and all(v > 0 for run in runs for r in getattr(run, source) if _number(v := r.get(key))):
                ax.set_yscale("log")
        if len(runs) > 1:
            axes[0][0].legend(fontsize=8)
        figures.append((title, _png(fig)))

    figure(["loss"], "train", "Training loss (light: every logged step; dark: smoothed)", log_y=True)
    eval_keys = sorted({k for run in runs for r in run.evals for k, v in r.items()
                        if k.startswith("eval_") and _number(v)})
    for start in range(0, len(eval_keys), 3):
        figure(eval_keys[start:start + 3], "evals", "Evaluation during training" if start == 0 else "")
    figure(["lr", "grad_norm"], "train", "Learning rate and gradient norm")
    figure(["items_per_sec", "memory_mb"], "train", "Throughput (items/s) and peak memory (MB)")
    return figures


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table of raw values: numbers formatted and right-aligned, anything else as text."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td class='num'>{_fmt(c)}</td>" if _number(c) else
                                    f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def summary_table(runs: Sequence[RunRecord]) -> str:
    """Every scalar metric of metrics.json, one column per run."""
    keys = {k for run in runs for k, v in run.metrics.items() if _number(v) or isinstance(v, str | bool)}
    ordered = [k for k in FIRST_METRICS if k in keys] + sorted(keys - set(FIRST_METRICS))
    rows = [[key, *(run.metrics.get(key) for run in runs)] for key in ordered]
    if not rows:
        return "<p>No metrics.json yet: the runs are in progress or stopped before the end.</p>"
    return _table(["metric", *(run.name for run in runs)], rows)


def evaluation_section(name: str, data: dict[str, Any]) -> str:
    """An evaluation file: accuracy and macro-F1, and precision/recall/F1/support per class; or a robustness
    file (`encoderlab robustness`): its metrics at every noise level."""
    where = ", ".join(f"{k} {_fmt(data[k])}" for k in ("data", "split", "n", "model") if k in data)
    rows = data.get("rows")
    if isinstance(rows, list) and rows and all(isinstance(row, dict) for row in rows):
        keys = list(rows[0])
        return "\n".join([f"<h4>{html.escape(name)}</h4><p>{html.escape(where)}; noise = "
                           f"{html.escape(str(data.get('noise', '')))}</p>",
                           _table(keys, [[row.get(k) for k in keys] for row in rows])])
    parts = [f"<h4>{html.escape(name)}</h4><p>{html.escape(where)}</p>",
             _table(["accuracy", "macro-F1"], [[data.get("accuracy"), data.get("macro_f1")]])]
    per_class = data.get("per_class")
    if isinstance(per_class, dict) and per_class:
        rows = [[str(label), *(v.get(k) for k in ("precision", "recall", "f1", "support"))]
                for label, v in per_class.items() if isinstance(v, dict)]
        parts.append(_table(["class", "precision", "recall", "F1", "support"], rows))
    return "\n".join(parts)


def run_section(run: RunRecord) -> str:
    parts = [f"<h2 id='{html.escape(run.name)}'>{html.escape(run.name)}</h2>",
             f"<p class='path'>{html.escape(str(run.path.resolve()))}</p>"]
    if not run.metrics:
        parts.append("<p>No metrics.json: the run is in progress or stopped before its end.</p>")
    if run.bad_log_lines:
        parts.append(f"<p>{run.bad_log_lines} unreadable line(s) in log.jsonl were skipped (a run stopped while "
                     "writing its last line).</p>")
    if (run.path / "final").is_dir():
        parts.append(f"<p>Final model: <code>{html.escape(str(run.path / 'final'))}</code></p>")
    nested = {k: v for k, v in run.metrics.items() if isinstance(v, list | dict) and k != "plots"}
    if nested:
        parts.append("<details><summary>Other results</summary><pre>"
                     + html.escape(json.dumps(nested, indent=2, ensure_ascii=False)) + "</pre></details>")
    for name, data in run.evaluations:
        parts.append(evaluation_section(name, data))
    for image in run.images:
        encoded = base64.b64encode(image.read_bytes()).decode("ascii")
        parts.append(f"<figure><img src='data:image/png;base64,{encoded}' alt='{html.escape(image.name)}'>"
                     f"<figcaption>{html.escape(str(image.relative_to(run.path)))}</figcaption></figure>")
    if run.config_text is not None:
        parts.append("<details><summary>config.yaml</summary><pre>" + html.escape(run.config_text)
                     + "</pre></details>")
    return "\n".join(parts)


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em}th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%}figure{margin:1em 0}
figcaption,.path{color:#666;font-size:.9em}pre{background:#f7f7f7;padding:.6em;overflow-x:auto}h2{margin-top:2em}"""


def render_report(runs: Sequence[RunRecord], title: str | None = None) -> str:
    title = title or ("encoderlab report: " + ", ".join(run.name for run in runs))
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p class='path'>written {datetime.now():%Y-%m-%d %H:%M} from {len(runs)} run(s)</p>",
             "<h2>Final metrics</h2>", summary_table(runs)]
    figures = curve_figures(runs)
    if figures:
        parts.append("<h2>Curves</h2>")
        for caption, encoded in figures:
            parts.append(f"<figure><img src='data:image/png;base64,{encoded}' alt='{html.escape(caption)}'>"
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.extend(run_section(run) for run in runs)
    parts.append("</body></html>")
    return "\n".join(parts)


def build_report(run_dirs: Sequence[str | Path], output: str | Path | None = None,
                 title: str | None = None) -> Path:
    """Write the HTML report of `run_dirs` (default output: RUN_DIR/report.html for one run, ./report.html
    for several) atomically, and return its path."""
    if not run_dirs:
        raise InputDataError("no run directory given; name at least one (e.g. encoderlab report runs/my-run)")
    runs = [read_run(d) for d in run_dirs]
    for unique in (lambda run, i: f"{run.path.resolve().parent.name}/{run.name}",  # runs/a/x vs runs/b/x
                   lambda run, i: f"{run.name} ({i + 1})"):                        # the same directory twice
        names = [run.name for run in runs]
        for i, run in enumerate(runs):
            if names.count(run.name) > 1:
                run.name = unique(run, i)
    path = Path(output) if output is not None else (runs[0].path / REPORT_FILE if len(runs) == 1
                                                      else Path(REPORT_FILE))
    if path.is_dir():
        path = path / REPORT_FILE
    if path.suffix.lower() not in (".html", ".htm"):
        raise InputDataError(f"--output '{output}' should end in .html (the report is one HTML page)")
    blocking = file_in_the_way(path.parent)
    if blocking is not None:
        raise InputDataError(f"--output '{output}': '{blocking}' is a file, not a folder; choose another path")
    atomic_write_text(path, render_report(runs, title))
    return path
