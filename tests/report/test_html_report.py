"""The HTML report of real (tiny) runs: a text classifier fine-tuned on a user's CSV and an autoencoder on
MNIST, read back from their run directories."""

import base64
import json
import re
import shutil

import pytest

from encoderlab.cli import main
from encoderlab.errors import InputDataError
from encoderlab.report.html_report import build_report, read_run
from tasks.finetune_fixtures import one_thread, tweet_rows, write_csv, write_tiny_encoder  # noqa: F401

pytestmark = pytest.mark.slow  # the fixtures of this file take many seconds; `make test-fast` skips it

IMAGE = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)' alt='([^']*)'")


def run_cli(*args: str) -> int:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    return info.value.code


@pytest.fixture(scope="module")
def classifier_runs(tmp_path_factory, minilm_dir):
    root = tmp_path_factory.mktemp("runs")
    tiny = write_tiny_encoder(root / "tiny", minilm_dir)
    data = write_csv(root / "tweets.csv", tweet_rows(120))
    runs = []
    for mode in ("full", "lora"):
        out = root / mode / "tweets"  # the same leaf name twice: the report has to tell them apart
        assert run_cli("finetune", f"data={data}", f"init={tiny}", f"mode={mode}", f"out_dir={out}",
                       "split=0.6,0.2,0.2", "max_length=32", "batch_size=8", "epochs=2", "eval_every=3",
                       "log_every=1", "progress=off") == 0
        runs.append(out)
    assert run_cli("evaluate", "--model", str(runs[0]), "--data", str(data)) == 0
    return runs


def test_report_of_two_runs_compares_their_metrics_and_curves(classifier_runs, tmp_path):
    output = build_report(classifier_runs, tmp_path / "compare.html")
    page = output.read_text(encoding="utf-8")
    metrics = [json.loads((run / "metrics.json").read_text()) for run in classifier_runs]
    assert "full/tweets" in page and "lora/tweets" in page  # same leaf name, told apart by the parent
    summary = page[page.index("<h2>Final metrics</h2>"):page.index("<h2>Curves</h2>")]
    for m in metrics:  # every run's final accuracy sits in the side-by-side table
        assert f">{m['test_accuracy']:.4g}<" in summary
    images = dict((alt, base64.b64decode(data)) for data, alt in IMAGE.findall(page))
    assert any(alt.startswith("Training loss") for alt in images)
    assert "Evaluation during training" in images
    assert all(png[:4] == b"\x89PNG" for png in images.values())
    # the evaluate command's file: accuracy, macro-F1 and one row per class with its support
    evaluation = json.loads((classifier_runs[0] / "eval_test.json").read_text())
    section = page[page.index("<h4>eval_test.json</h4>"):]
    for label, row in evaluation["per_class"].items():
        assert f"<td>{label}</td>" in section and f">{row['support']}<" in section
    assert "eval_test_confusion.png" in page  # the run's own plots come along


def test_one_run_writes_into_its_directory_and_reads_an_unfinished_log(classifier_runs, tmp_path):
    run = tmp_path / "copy"
    run.mkdir()
    log = (classifier_runs[0] / "log.jsonl").read_text().splitlines()
    (run / "log.jsonl").write_text("\n".join(log) + '\n{"step": 99, "loss": 0.4')  # killed mid-line, no metrics
    record = read_run(run)
    assert record.bad_log_lines == 1 and not record.metrics
    assert [r["step"] for r in record.train] == [json.loads(line)["step"] for line in log if '"loss"' in line]
    assert run_cli("report", str(run)) == 0
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "No metrics.json" in page and "1 unreadable line(s)" in page


def test_autoencoder_run_report_embeds_its_pictures(tmp_path):
    out = tmp_path / "ae"
    assert run_cli("autoencode", "data=mnist", "model.kind=mlp", f"out_dir={out}", "train_limit=512",
                   "eval_limit=128", "max_steps=20", "eval_every=10", "batch_size=64", "progress=off") == 0
    from encoderlab.tasks.robustness import evaluate_robustness

    robustness = evaluate_robustness(out, None, [0.3], max_examples=64)
    page = build_report([out]).read_text(encoding="utf-8")
    alts = [alt for _, alt in IMAGE.findall(page)]
    assert {"reconstructions.png", "latent.png", "robustness_mnist_test.png"} <= set(alts)
    section = page[page.index("<h4>robustness_mnist_test.json</h4>"):]  # its rows as a table
    assert f">{robustness.rows[1]['recon_mse_to_clean']:.4g}<" in section.split("</table>")[0]
    assert f">{json.loads((out / 'metrics.json').read_text())['test_mse']:.4g}<" in page


def test_bad_input_is_a_clear_error(classifier_runs, tmp_path):
    with pytest.raises(InputDataError, match="does not exist"):
        build_report([tmp_path / "nope"])
    (tmp_path / "run.log").write_text("a log file beside the runs")
    with pytest.raises(InputDataError, match="is a file, not a run directory"):
        build_report([*classifier_runs, tmp_path / "run.log"])
    # a run's final/ (of any kind: a seq2seq run's has no config.json) names the run to give instead
    with pytest.raises(InputDataError, match=r"is inside the run '.*': give that directory.*seq2seq"):
        build_report([classifier_runs[0] / "final"])
    model = tmp_path / "copied-model"
    shutil.copytree(classifier_runs[0] / "final", model)
    with pytest.raises(InputDataError, match="model directory: give the run directory above it"):
        build_report([model])
    with pytest.raises(InputDataError, match="should end in .html"):
        build_report(classifier_runs, tmp_path / "report.pdf")
    assert not (tmp_path / "report.pdf").exists()
    (tmp_path / "notes.txt").write_text("x")  # used to end in a FileExistsError traceback
    with pytest.raises(InputDataError, match=r"notes.txt' is a file, not a folder"):
        build_report(classifier_runs, tmp_path / "notes.txt" / "sub" / "page.html")
