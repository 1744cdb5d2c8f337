"""The PR report against a base revision, in a throwaway two-commit DVC project."""

from __future__ import annotations

import argparse
import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from emotion import report
from emotion.errors import EmotionError

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
    (project / report.CONFUSION).write_text(confusion_csv(pairs))
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-q", "-m", f"lr {lr}"], project)
    return run(["git", "rev-parse", "--short", "HEAD"], project)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A DVC project with two commits; returns (path, short sha of the first)."""
    root = tmp_path_factory.mktemp("report")
    run(["git", "init", "-q", "-b", "main"], root)
    run(["git", "config", "user.email", "report@example.com"], root)
    run(["git", "config", "user.name", "report"], root)
    run(["dvc", "init", "-q"], root)
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "metrics").mkdir()
    (root / "plots/evaluate").mkdir(parents=True)
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
    assert "No metric changes" not in text
    assert "No params changes" not in text


def test_report_against_head_says_nothing_changed(project: tuple[Path, str]) -> None:
    text = report.build_report("HEAD", project[0])
    assert "No metric changes." in text
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


def test_module_entry_writes_out_file_and_plots(
    project: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path, first = project
    monkeypatch.chdir(path)
    out, plots = tmp_path / "report.md", tmp_path / "plots"
    report.main(["--base", first, "--out", str(out), "--plots-dir", str(plots)])
    assert out.read_text() == report.build_report(first, path)
    assert "confusion" in (plots / "index.html").read_text()


def test_cli_subcommand_prints_and_fails_cleanly(
    project: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project[0])
    parser = argparse.ArgumentParser(prog="emotion")
    report.add_report_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["report", "--base", "HEAD"])
    args.func(args)
    assert capsys.readouterr().out.startswith("## Pipeline report: `HEAD` (")
    with pytest.raises(SystemExit) as missing:
        parser.parse_args(["report"])
    assert missing.value.code == 2
    assert "--base" in capsys.readouterr().err
    with pytest.raises(SystemExit) as failed:
        report.main(["--base", "v9"])
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
