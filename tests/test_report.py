"""The PR report against a base revision, in a throwaway two-commit DVC project."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml

from emotion.core.errors import EmotionError
from emotion.tools import pr_report as report
from emotion.tools.cli import build_parser
from emotion.tools.cli import main as cli_main

from .conftest import tool_env

DVC_YAML = """\
stages:
  train:
    cmd: "true"
    params:
      - train.lr
    metrics:
      - metrics/train.json:
          cache: false
    plots:
      - reports/train.json:
          cache: false
          template: bar_horizontal
          x: f1
          y: class
plots:
  - plots/evaluate/confusion.csv:
      template: confusion
      x: actual
      y: predicted
"""


def run(cmd: list[str], cwd: Path) -> str:
    return subprocess.run(
        cmd, cwd=cwd, env=tool_env(), capture_output=True, text=True, check=True
    ).stdout.strip()


def confusion_csv(pairs: list[tuple[str, str]]) -> str:
    return "actual,predicted\n" + "".join(f"{a},{p}\n" for a, p in pairs)


def commit(project: Path, lr: float, accuracy: float, pairs: list[tuple[str, str]]) -> str:
    (project / "params.yaml").write_text(f"train:\n  lr: {lr}\n")
    (project / "metrics/train.json").write_text(json.dumps({"accuracy": accuracy}))
    sad = sum(a == p == "sad" for a, p in pairs) / 2
    detail = {
        "per_class": {"sad": {"f1": sad}, "happy": {"f1": 1.0}},
        "methods": {"shap": {"deletion_auc": round(1 - accuracy, 2)}},
        "rows": [{"class": "sad", "f1": sad}, {"class": "happy", "f1": 1.0}],
    }
    (project / "reports/train.json").write_text(json.dumps(detail))
    (project / report.CONFUSION).write_text(confusion_csv(pairs))
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-q", "-m", f"lr {lr}"], project)
    return run(["git", "rev-parse", "--short", "HEAD"], project)


def init_project(root: Path, dvc_yaml: str) -> Path:
    """A new git + DVC repo at ``root`` with ``dvc_yaml`` and empty metrics/plots folders."""
    run(["git", "init", "-q", "-b", "main"], root)
    run(["git", "config", "user.email", "report@example.com"], root)
    run(["git", "config", "user.name", "report"], root)
    run(["dvc", "init", "-q"], root)
    (root / "dvc.yaml").write_text(dvc_yaml)
    (root / "metrics").mkdir()
    (root / "reports").mkdir()
    (root / "plots/evaluate").mkdir(parents=True)
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A DVC project with two commits; returns (path, short sha of the first)."""
    root = init_project(tmp_path_factory.mktemp("report"), DVC_YAML)
    first = commit(root, 0.1, 0.5, [("happy", "happy")] * 2 + [("sad", "sad"), ("sad", "happy")])
    commit(root, 0.2, 0.75, [("happy", "happy")] * 2 + [("sad", "sad")] * 2)
    return root, first


def row(text: str, key: str) -> list[str]:
    """The cells of the single markdown table row mentioning ``key``."""
    (line,) = [line for line in text.splitlines() if line.startswith("|") and key in line]
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_report_shows_changed_params_metrics_and_recall(project: tuple[Path, str]) -> None:
    path, first = project
    text = report.build_report(first, path)
    assert text.startswith(f"## Pipeline report: `{first}` → workspace at `main` (")
    assert row(text, "train.lr")[-2:] == ["0.1", "0.2"]
    assert row(text, "accuracy")[2:4] == ["0.5", "0.75"]
    assert row(text, "| sad |") == ["sad", "2 → 2", "50.0% → 100.0%", "+50.0 pp", "—"]
    assert row(text, "| happy |") == ["happy", "2 → 2", "100.0% → 100.0%", "+0.0 pp", "—"]
    # the per-class and per-method detail of the committed reports, after the headline
    assert row(text, "per_class.sad.f1")[:4] == [
        "reports/train.json",
        "per_class.sad.f1",
        "0.5",
        "1.0",
    ]
    assert row(text, "methods.shap.deletion_auc")[2:4] == ["0.5", "0.25"]
    assert "per_class.happy.f1" not in text  # unchanged
    assert text.index("### Metrics") < text.index("### Detail (reports/)")
    assert "No metric changes" not in text
    assert "No params changes" not in text


def test_report_against_head_says_nothing_changed(project: tuple[Path, str]) -> None:
    text = report.build_report("HEAD", project[0])
    assert "No metric changes." in text
    assert "No changes in the reports." in text
    assert "No params changes." in text
    assert "Confusion matrix unchanged (4 test images)." in text
    assert "|" not in text


def test_unknown_revision_and_non_repository_are_named(
    project: tuple[Path, str], tmp_path: Path
) -> None:
    with pytest.raises(EmotionError, match="unknown git revision 'no-such-branch'"):
        report.build_report("no-such-branch", project[0])
    with pytest.raises(EmotionError, match="not inside a git repository"):
        report.build_report("HEAD", tmp_path)


def test_confusion_section_names_the_missing_side_and_top_confusion() -> None:
    old = Counter({("sad", "sad"): 3, ("sad", "happy"): 1})
    new = Counter(
        {("sad", "sad"): 2, ("sad", "angry"): 1, ("sad", "happy"): 1, ("angry", "angry"): 1}
    )
    assert "Absent at base `main`: no confusion" in report.confusion_section(None, new, "main")
    assert "Absent at base `main` and the workspace" in report.confusion_section(None, None, "main")
    text = report.confusion_section(old, new, "main")
    assert row(text, "| angry |") == ["angry", "0 → 1", "— → 100.0%", "—", "—"]
    # a tie goes to the first class name; the base rate of the same pair is beside it
    assert row(text, "| sad |") == [
        "sad",
        "4 → 4",
        "75.0% → 50.0%",
        "-25.0 pp",
        "angry 25.0%, 0.0%",
    ]


def test_read_confusion_rejects_other_columns() -> None:
    with pytest.raises(EmotionError, match="at main: expected columns 'actual,predicted'"):
        report.read_confusion("y_true,y_pred\na,a\n", "plots/evaluate/confusion.csv at main")


def test_cli_writes_out_file_and_plots(
    project: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path, first = project
    monkeypatch.chdir(path)
    out, plots = tmp_path / "report.md", tmp_path / "plots"
    cli_main(["report", "--base", first, "--out", str(out), "--plots-dir", str(plots)])
    assert out.read_text() == report.build_report(first, path)
    assert "confusion" in (plots / "index.html").read_text()


def test_cli_subcommand_prints_and_fails_cleanly(
    project: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project[0])
    parser = build_parser()
    args = parser.parse_args(["report", "--base", "HEAD"])
    args.func(args)
    assert capsys.readouterr().out.startswith("## Pipeline report: `HEAD` (")
    with pytest.raises(SystemExit) as missing:
        parser.parse_args(["report"])
    assert missing.value.code == 2
    assert "--base" in capsys.readouterr().err
    with pytest.raises(SystemExit) as failed:
        cli_main(["report", "--base", "v9"])
    assert failed.value.code == 2
    assert capsys.readouterr().err.startswith("error: unknown git revision 'v9'")


def test_timing_metrics_are_folded_apart_from_quality_metrics() -> None:
    table = (
        "| Path | Metric | HEAD | workspace | Change |\n"
        "|---|---|---|---|---|\n"
        "| metrics/eval.json | accuracy | 0.5 | 0.75 | 0.25 |\n"
        "| metrics/export.json | latency.pytorch.batch1_p50_ms | 2.6 | 3.5 | 0.9 |\n"
        "| metrics/explain.json | methods.lime.seconds_per_image | 0.68 | 0.71 | 0.03 |\n"
    )
    quality, timing = report.split_timings(table)
    assert "accuracy" in quality
    assert "latency" not in quality
    assert "seconds_per_image" not in quality
    assert timing.count("metrics/") == 2
    section = report.metrics_section(table)
    assert section.index("accuracy") < section.index("<details>") < section.index("batch1_p50_ms")
    assert "2 wall-clock timing changes" in section
    rows = [line for line in table.splitlines() if "accuracy" not in line]
    only_timings = report.metrics_section("\n".join(rows))
    assert "No metric changes." in only_timings
    assert report.is_timing("epoch_s")
    assert not report.is_timing("macro_f1")
    assert not report.is_timing("size_bytes.int8")


# A project as a workstation PR carries it: the stage runs on a GPU with torchrun and reads a
# dataset that is not here, so the report must come from the committed results alone.
TRAIN_CMD = "touch RAN && torchrun --nproc_per_node=gpu stages/train.py --data {source}"
WORKSTATION_DVC_YAML = """\
stages:
  train:
    cmd: TRAIN_CMD
    deps:
      - ${ingest.source}
    params:
      - ingest.source
      - model
      - train.epochs
    metrics:
      - metrics/eval.json:
          cache: false
    plots:
      - plots/evaluate/confusion.csv:
          cache: false
          template: confusion
          x: actual
          y: predicted
""".replace("TRAIN_CMD", TRAIN_CMD.format(source="${ingest.source}"))

DEMO = {"ingest": {"source": "data/raw/demo"}, "model": {"name": "emotion_cnn_s", "size": 48}}
WORKSTATION = {
    "ingest": {"source": "data/external/fer2013"},
    "model": {"name": "resnet50", "size": 224},
}


def lock_yaml(params: dict[str, object], epochs: int, outs: dict[str, str]) -> str:
    """A dvc.lock as `dvc repro` writes it for WORKSTATION_DVC_YAML."""
    source = params["ingest"]["source"]  # type: ignore[index]
    lock = {
        "schema": "2.0",
        "stages": {
            "train": {
                "cmd": TRAIN_CMD.format(source=source),
                "deps": [
                    {
                        "path": source,
                        "hash": "md5",
                        "md5": "0" * 32 + ".dir",
                        "size": 9,
                        "nfiles": 3,
                    }
                ],
                "params": {
                    "params.yaml": {
                        "ingest.source": source,
                        "model": params["model"],
                        "train.epochs": epochs,
                    }
                },
                "outs": [
                    {
                        "path": path,
                        "hash": "md5",
                        "md5": hashlib.md5(text.encode()).hexdigest(),
                        "size": len(text),
                    }
                    for path, text in outs.items()
                ],
            }
        },
    }
    return yaml.safe_dump(lock, sort_keys=False)


def commit_run(
    root: Path, params: dict[str, object], epochs: int, accuracy: float, locked_epochs: int
) -> str:
    """Commit params.yaml, the metrics and confusion of a run, and its dvc.lock."""
    (root / "params.yaml").write_text(yaml.safe_dump({**params, "train": {"epochs": epochs}}))
    sad = [("sad", "sad")] * round(10 * accuracy) + [("sad", "happy")] * round(10 - 10 * accuracy)
    outs = {
        "metrics/eval.json": json.dumps({"accuracy": accuracy}),
        report.CONFUSION: confusion_csv([("happy", "happy")] * 10 + sad),
    }
    for path, text in outs.items():
        (root / path).write_text(text)
    (root / "dvc.lock").write_text(lock_yaml(params, locked_epochs, outs))
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-q", "-m", f"run: {params['model']}"], root)  # type: ignore[index]
    return run(["git", "rev-parse", "--short", "HEAD"], root)


def workstation_project(root: Path, head_locked_epochs: int) -> tuple[str, str]:
    """A `main` demo run, then branch `feature` with a workstation run; returns both shas."""
    init_project(root, WORKSTATION_DVC_YAML)
    base = commit_run(root, DEMO, 18, 0.6, 18)
    run(["git", "checkout", "-q", "-b", "feature"], root)
    head = commit_run(root, WORKSTATION, 80, 0.9, head_locked_epochs)
    return base, head


def emotion_report(root: Path, out_dir: Path) -> str:
    """`emotion report --base main` as a user (or CI) runs it; the markdown it wrote."""
    out, plots = out_dir / "report.md", out_dir / "plots"
    done = subprocess.run(
        ["emotion", "report", "--base", "main", "--out", str(out), "--plots-dir", str(plots)],
        cwd=root,
        env=tool_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out.read_text()


@pytest.mark.e2e
def test_report_of_a_workstation_run_reads_committed_results_only(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    base, head = workstation_project(root, head_locked_epochs=80)
    text = emotion_report(root, tmp_path)

    assert row(text, "accuracy")[2:4] == ["0.6", "0.9"]
    assert row(text, "ingest.source")[-2:] == ["data/raw/demo", "data/external/fer2013"]
    assert row(text, "model.name")[-2:] == ["emotion_cnn_s", "resnet50"]
    assert row(text, "train.epochs")[-2:] == ["18", "80"]
    assert row(text, "| sad |")[2] == "60.0% → 90.0%"
    assert "### Provenance" in text
    assert "no pipeline stage was run for this report" in text
    assert f"- head commit `feature` ({head}): dvc.lock matches params.yaml (1 stage)" in text
    assert f"- base commit `main` ({base}): dvc.lock matches params.yaml (1 stage)" in text
    assert "may not correspond" not in text
    assert "uncommitted" not in text
    assert "confusion" in (tmp_path / "plots/index.html").read_text()
    # nothing ran: no stage output, no dataset, the workspace is exactly the head commit
    assert not (root / "RAN").exists()
    assert not (root / "data").exists()
    assert run(["git", "status", "--porcelain"], root) == ""


@pytest.mark.e2e
def test_report_warns_when_dvc_lock_disagrees_with_params(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    base, head = workstation_project(root, head_locked_epochs=60)  # epochs edited after the run
    text = emotion_report(root, tmp_path)

    assert (
        f"- head commit `feature` ({head}): ⚠️ **dvc.lock disagrees with params.yaml** (1 param): "
        "metrics may not correspond to params.yaml; run `dvc repro` and commit dvc.lock"
    ) in text
    assert "  - `train`: `train.epochs` (dvc.lock 60, params.yaml 80)" in text
    assert f"- base commit `main` ({base}): dvc.lock matches params.yaml (1 stage)" in text
    assert text.count("may not correspond") == 1
    assert not (root / "RAN").exists()


def test_lock_mismatches_compares_each_recorded_param() -> None:
    lock = report.load_yaml(
        "stages:\n"
        "  prepare:\n"
        "    params:\n"
        "      params.yaml: {a.scale: [1.0, 1.25], a.lr: 1e-4, a.rates: {x: 1}}\n"
        "      other.yaml: {b: 1}\n"
        "  train:\n"
        "    params:\n"
        "      params.yaml: {a.scale.1: 1.25, a.gone: 3}\n"
        "  copy:\n"
        "    cmd: cp a b\n",
        "dvc.lock",
    )
    params = report.load_yaml("a:\n  scale: [1.0, 1.25]\n  lr: 0.0001\n  rates: {x: 2}\n", "p")
    found = report.lock_mismatches(lock, params)
    assert [(m.stage, m.key) for m in found] == [("prepare", "a.rates"), ("train", "a.gone")]
    assert str(found[0]) == '`prepare`: `a.rates` (dvc.lock {"x": 1}, params.yaml {"x": 2})'
    assert str(found[1]) == "`train`: `a.gone` (dvc.lock 3, params.yaml missing)"
    with pytest.raises(EmotionError, match=r"dvc.lock at main: no `stages:` mapping; regenerate"):
        report.lock_mismatches({"schema": "2.0"}, params, "dvc.lock at main")
    with pytest.raises(EmotionError, match=r"params.yaml at main: not valid YAML .*; fix it"):
        report.load_yaml("a: [1\n", "params.yaml at main")


def test_provenance_names_uncommitted_results_and_missing_lock() -> None:
    head = report.LockCheck(report.Revision("HEAD", "abc1234"), 2, [])
    base = report.LockCheck(report.Revision("origin/main", "def5678"), None, [])
    text = report.provenance_section(head, base, ["metrics/eval.json", "params.yaml"])
    assert "- head commit `HEAD` (abc1234): dvc.lock matches params.yaml (2 stages)" in text
    assert "- base commit `origin/main` (def5678): no dvc.lock committed" in text
    assert (
        "- ⚠️ uncommitted changes in `metrics/eval.json`, `params.yaml`: the tables show the "
        "workspace, not commit abc1234"
    ) in text
