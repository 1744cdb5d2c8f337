"""A stage's results: headline metrics looked up in its report, both written as declared."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from emotion.core.errors import EmotionError
from emotion.core.results import headline, write_results
from emotion.tools.compare import compare_command, headline_names

REPORT = {
    "accuracy": 0.869783123,
    "latency": {"int8": {"p50_ms": 0.48668849990}},
    "size_bytes": 1287590,
    "per_class": {"happy": {"f1": 0.93}},
}


def test_headline_copies_dotted_keys_and_shortens_floats() -> None:
    keys = {"acc": "accuracy", "int8_ms": "latency.int8.p50_ms", "int8_bytes": "size_bytes"}
    assert headline(REPORT, keys) == {"acc": 0.8698, "int8_ms": 0.4867, "int8_bytes": 1287590}


def test_a_missing_report_key_is_named() -> None:
    with pytest.raises(EmotionError, match=r"latency\.fp16\.p50_ms"):
        headline(REPORT, {"fp16_ms": "latency.fp16.p50_ms"})


@pytest.mark.parametrize("name", ["faith.shap", "Accuracy", "val-f1", ""])
def test_headline_names_never_look_like_params(name: str) -> None:
    """Params columns are ``section.key``; a dotted headline name would be dropped with them."""
    with pytest.raises(EmotionError, match="headline metric names"):
        headline(REPORT, {name: "accuracy"})


def test_write_results_writes_the_report_with_its_rows_and_the_headline(tmp_path: Path) -> None:
    rows = [{"class": "happy", "f1": 0.93}]
    out = write_results(
        REPORT,
        rows,
        report_path=tmp_path / "reports/eval.json",
        metrics_path=tmp_path / "metrics/eval.json",
        keys={"acc": "accuracy"},
    )
    assert out == {"acc": 0.8698}
    assert json.loads((tmp_path / "metrics/eval.json").read_text()) == {"acc": 0.8698}
    assert json.loads((tmp_path / "reports/eval.json").read_text()) == {**REPORT, "rows": rows}


def test_a_report_key_named_rows_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EmotionError, match="rows"):
        write_results(
            {"rows": 1},
            [],
            report_path=tmp_path / "r.json",
            metrics_path=tmp_path / "m.json",
            keys={},
        )
    assert not (tmp_path / "m.json").exists()


def test_empty_lists_are_written_as_null_so_dvc_can_read_the_report_as_a_plot(
    tmp_path: Path,
) -> None:
    report = {"cap_binds": [], "patterns": {"neutral": {"expected": []}}, "kept": ["a"]}
    write_results(
        report,
        [{"class": "a", "n": 1}],
        report_path=tmp_path / "r.json",
        metrics_path=tmp_path / "m.json",
        keys={},
    )
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["cap_binds"] is None
    assert written["patterns"]["neutral"]["expected"] is None
    assert written["kept"] == ["a"]
    assert written["rows"] == [{"class": "a", "n": 1}]


def test_compare_keeps_every_headline_metric_and_leaves_dvc_columns_out(tmp_path: Path) -> None:
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/eval.json").write_text('{"acc": 0.9, "f1": 0.8}')
    (tmp_path / "metrics/export.json").write_text('{"int8_ms": 0.5}')
    cmd = compare_command(tmp_path, ["-n", "3"])
    assert cmd[1:5] == ["exp", "show", "--only-changed", "--keep"]
    keep = re.compile(cmd[5])
    assert all(keep.match(n) for n in ("acc", "f1", "int8_ms"))
    # DVC's own lower-case columns and params stay out of the protected set
    assert not any(keep.match(n) for n in ("rev", "typ", "parent", "train.head_lr", "f1_x"))
    assert cmd[6:] == ["--drop", "Created|State|Executor|.*/", "--no-pager", "-n", "3"]
    drop = re.compile(cmd[7])
    assert drop.match("models/best_model.pth")  # a file dependency's hash column
    assert not any(drop.match(n) for n in ("acc", "train.head_lr"))


def test_compare_without_metrics_says_to_run_the_pipeline(tmp_path: Path) -> None:
    with pytest.raises(EmotionError, match="dvc repro"):
        headline_names(tmp_path)
