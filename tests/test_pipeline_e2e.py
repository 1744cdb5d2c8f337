"""End to end: `dvc repro` of a tiny config in a temp copy of the repo.

One pipeline run is shared by the module: status/no-op checks, a second clean run that must
agree exactly (reproducibility), params selectivity for every key, push -> fresh clone -> pull,
an independent ONNX client, a real (non-demo) source, and failing stages.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from emotion.core.errors import DataError
from emotion.tools.params_file import STAGE_SECTIONS, all_leaf_keys, stage_leaf_keys
from emotion.tools.pr_report import is_timing

from .conftest import (
    REPO,
    copy_repo,
    image_bytes,
    ran_project,
    run,
    set_params,
    stale_stages,
    tree_digest,
)

pytestmark = pytest.mark.e2e
DVC_STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
DATA_GLOBS = ("data/interim/**/*.csv", "data/processed/**/*.csv", "data/**/*.npy")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed copy of the repo after one tiny repro."""
    return ran_project(tmp_path_factory.mktemp("e2e") / "project")


def test_repro_writes_outputs_and_leaves_nothing_stale(project: Path) -> None:
    eda = json.loads((project / "reports/eda.json").read_text())
    assert eda["total"] == 120
    assert eda["with_mask"] == 120
    assert sum(c["count"] for c in eda["classes"].values()) == 120
    assert (project / "plots/eda/samples.png").stat().st_size > 1000
    assert (project / "data/interim/ingest/manifest.csv").is_file()
    evaluation = json.loads((project / "reports/eval.json").read_text())
    assert (
        evaluation["n"]
        == len((project / "data/evaluate/predictions.csv").read_text().splitlines()) - 1
    )
    assert (project / "models/best_model.pth").is_file()
    regions = json.loads((project / "reports/regions.json").read_text())
    assert regions["vs_source_masks"]["images"] == regions["fitted"] > 0  # demo masks compared
    assert stale_stages(project) == set()


def test_dvc_metrics_show_is_the_headline_and_fits_a_250_column_terminal(project: Path) -> None:
    """Each stage declares a few short headline figures; the detail stays in reports/."""
    shown = run(["dvc", "metrics", "show"], project).stdout
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= 250, shown
    headline = {
        name
        for path in (project / "metrics").glob("*.json")
        for name in json.loads(path.read_text())
    }
    assert set(lines[0].split()[1:]) == headline
    assert 12 <= len(headline) <= 20
    assert {"acc", "f1", "ece", "gradcam_pp", "int8_ms"} <= headline


def test_second_repro_is_a_no_op(project: Path) -> None:
    lock = (project / "dvc.lock").read_bytes()
    before = tree_digest(project / "data")
    out = run(["dvc", "repro"], project).stdout
    for stage in STAGE_SECTIONS:
        assert f"Stage '{stage}' didn't change, skipping" in out
    assert (project / "dvc.lock").read_bytes() == lock
    assert tree_digest(project / "data") == before


def without_timings(obj: Any) -> Any:
    """``obj`` without timing keys (the PR report's :func:`is_timing`), at any depth."""
    if isinstance(obj, dict):
        return {key: without_timings(value) for key, value in obj.items() if not is_timing(key)}
    if isinstance(obj, list):
        return [without_timings(value) for value in obj]
    return obj


def _relative(root: Path, patterns: tuple[str, ...]) -> set[str]:
    return {p.relative_to(root).as_posix() for pattern in patterns for p in root.glob(pattern)}


@pytest.mark.slow
def test_a_second_clean_run_reproduces_data_and_metrics(project: Path, tmp_path: Path) -> None:
    """Same params, fresh copy: byte-identical manifests/arrays, identical metrics (CPU)."""
    other = copy_repo(tmp_path / "again")
    run(["dvc", "repro"], other)
    files = _relative(project, DATA_GLOBS)
    assert files == _relative(other, DATA_GLOBS)
    assert {"data/interim/ingest/manifest.csv", "data/processed/synth/train.npy"} <= files
    differ = [f for f in sorted(files) if (project / f).read_bytes() != (other / f).read_bytes()]
    assert differ == []
    metrics = _relative(project, ("metrics/*.json", "reports/*.json"))
    assert metrics == _relative(other, ("metrics/*.json", "reports/*.json"))
    assert {f"{d}/{n}.json" for d in ("metrics", "reports") for n in ("eda", "eval")} <= metrics
    for rel in sorted(metrics):
        first, second = (
            without_timings(json.loads((r / rel).read_text())) for r in (project, other)
        )
        assert first, f"{rel}: nothing left to compare once timings are removed"
        assert first == second, rel
    models = ("models/best_model.pth", "models/model.onnx", "models/model.int8.onnx")
    assert [hashlib.md5((project / m).read_bytes()).hexdigest() for m in models] == [
        hashlib.md5((other / m).read_bytes()).hexdigest() for m in models
    ]


def independent_client_imports() -> set[str]:
    from . import independent_client

    imports = set()
    for node in ast.walk(ast.parse(Path(independent_client.__file__).read_text())):
        if isinstance(node, ast.Import):
            imports |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imports.add((node.module or "").split(".")[0])
    return imports


def assert_client_matches_evaluate(project: Path) -> None:
    """The independent client's calibrated (TTA) probabilities are the evaluate stage's."""
    from . import independent_client

    test = pd.read_csv(project / "data/processed/balance/test.csv", keep_default_na=False)
    expected = pd.read_csv(project / "data/evaluate/predictions.csv", keep_default_na=False)
    probs = independent_client.probabilities(
        project / "models", [project / p for p in test["path"]]
    )
    # evaluate writes 6 decimals; torch and onnxruntime logits differ by < 1e-5 (export parity)
    np.testing.assert_allclose(
        probs, expected[[c for c in expected if c.startswith("p_")]], atol=2e-5
    )
    classes = json.loads((project / "models/model.json").read_text())["classes"]
    assert [classes[i] for i in probs.argmax(1)] == list(expected["predicted"])


def test_an_independent_onnx_client_reproduces_the_test_accuracy(project: Path) -> None:
    """Only onnxruntime, numpy, Pillow and models/model.json: same probabilities as evaluate."""
    assert independent_client_imports() <= {
        "__future__",
        "json",
        "pathlib",
        "numpy",
        "onnxruntime",
        "PIL",
    }
    assert_client_matches_evaluate(project)
    test = pd.read_csv(project / "data/processed/balance/test.csv", keep_default_na=False)
    predicted = pd.read_csv(project / "data/evaluate/predictions.csv")["predicted"]
    accuracy = float(np.mean(predicted.to_numpy() == test["label"].to_numpy()))
    assert accuracy == pytest.approx(
        json.loads((project / "reports/eval.json").read_text())["accuracy"], abs=5e-7
    )


def test_temperature_fitted_on_validation_lowers_test_nll_and_keeps_the_argmax(
    project: Path,
) -> None:
    """The trained tiny model's temperature, fitted on val, helps on the held-out test split."""
    from . import independent_client

    calibration = json.loads((project / "reports/eval.json").read_text())["calibration"]
    assert calibration["method"] == "temperature"
    assert calibration["temperature"] != pytest.approx(1.0, abs=1e-3)
    assert calibration["calibrated"]["nll"] < calibration["uncalibrated"]["nll"]
    original = (project / "models/model.json").read_bytes()
    contract = json.loads(original)
    assert contract["output"]["temperature"] == calibration["temperature"]
    test = pd.read_csv(project / "data/processed/balance/test.csv", keep_default_na=False)
    paths = [project / p for p in test["path"]]
    calibrated = independent_client.probabilities(project / "models", paths)
    (project / "models/model.json").write_text(
        json.dumps({**contract, "output": {**contract["output"], "temperature": 1.0}})
    )
    try:
        raw = independent_client.probabilities(project / "models", paths)
    finally:
        (project / "models/model.json").write_bytes(original)
    np.testing.assert_array_equal(calibrated.argmax(1), raw.argmax(1))


def test_validation_scores_in_eval_json_are_the_served_models(project: Path) -> None:
    """eval.json's validation accuracy is what the exported model scores on those image files."""
    from . import independent_client

    validation = json.loads((project / "reports/eval.json").read_text())["validation"]
    val = pd.read_csv(project / "data/processed/balance/val.csv", keep_default_na=False)
    predicted = independent_client.predict(project / "models", [project / p for p in val["path"]])
    assert validation["n"] == len(val)
    assert validation["accuracy"] == pytest.approx(
        float(np.mean(np.array(predicted) == val["label"].to_numpy())), abs=5e-7
    )


def test_export_writes_a_model_card_from_the_measured_metrics(project: Path) -> None:
    """MODEL_CARD.md: Hugging Face metadata whose metrics are eval.json's, and a per-class table."""
    card = (project / "models/MODEL_CARD.md").read_text()
    _, front, body = card.split("---\n", 2)
    meta = yaml.safe_load(front)
    evaluation = json.loads((project / "reports/eval.json").read_text())
    results = {m["name"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert results["Test accuracy"] == evaluation["accuracy"]
    assert results["Test macro-F1"] == evaluation["macro_f1"]
    assert meta["datasets"] == ["data/raw/demo"]
    for name, row in evaluation["per_class"].items():
        assert f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} |" in body
    contract = json.loads((project / "models/model.json").read_text())
    for entry in contract["files"].values():
        assert entry["sha256"] in body
    for section in ("## Uses", "## Bias, risks and limitations", "## Training data"):
        assert section in body
    assert (
        "> **Trained on Procedurally drawn demo faces: not photos of people; not meant for" in body
    )
    assert contract["source"]["training_data"]["photos"] is False


def test_a_release_of_the_run_verifies_serves_and_refuses_tampering(
    project: Path, tmp_path: Path
) -> None:
    """`emotion release` on the finished demo run: a folder the server and the client load."""
    from emotion.release.bundle import verify_release
    from emotion.serve import ServeSettings, create_app

    from .serve_fixtures import FACE_MODEL, astronaut, encode

    out = tmp_path / "release" / "demo-v0"
    run(["emotion", "release", "--out", str(out)], project)
    files = verify_release(out)
    assert set(files) == {"model.onnx", "model.int8.onnx", "model.json", "MODEL_CARD.md",
                          "params.overlay.yaml", "release.json"}  # fmt: skip
    sums = run(["sha256sum", "-c", "SHA256SUMS"], out).stdout
    assert sums.count(": OK") == 6
    manifest = json.loads((out / "release.json").read_text())
    head = run(["git", "rev-parse", "HEAD"], project).stdout.strip()
    assert manifest["commit"] == head
    assert manifest["training_data"]["name"] == "demo"
    assert manifest["dataset"]["path"] == "data/raw/demo"
    assert manifest["dataset"]["md5"].endswith(".dir")
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    train_out = {o["path"]: o["md5"] for o in lock["train"]["outs"]}
    assert (
        manifest["dvc_lock"]["train"]["outs"]["models/best_model.pth"]["md5"]
        == train_out["models/best_model.pth"]
    )
    evaluation = json.loads((project / "reports/eval.json").read_text())
    assert manifest["metrics"]["test"]["accuracy"] == evaluation["accuracy"]
    assert manifest["params_overlay"] == {}  # the tiny run's params are the committed ones
    card = (out / "MODEL_CARD.md").read_text()
    assert "## Release `demo-v0`" in card
    assert head in card
    settings = ServeSettings(model_dir=out, face_model=FACE_MODEL, client_dir=REPO / "client")
    with TestClient(create_app(settings)) as client:
        photo = {"file": ("a.png", encode(astronaut()))}
        assert client.post("/predict", files=photo).status_code == 200
        assert client.get("/metadata").json()["source"]["training_data"]["name"] == "demo"
        for name in ("model.onnx", "model.int8.onnx"):
            served = client.get(f"/app/model/{name}")
            assert served.status_code == 200
            assert served.content == (out / name).read_bytes()
        assert client.get("/app/model/model.json").json() == json.loads(
            (out / "model.json").read_text()
        )
    (out / "model.int8.onnx").write_bytes((out / "model.int8.onnx").read_bytes() + b"\0")
    with pytest.raises(DataError, match="SHA-256 differs"):
        verify_release(out)
    again = run(["emotion", "release", "--out", str(out)], project, check=False)
    assert again.returncode == 2
    assert "already exists" in again.stderr


def test_occluding_the_most_salient_patch_costs_the_prediction_more_than_a_random_one(
    project: Path,
) -> None:
    """``/predict?explain=true`` on the trained model: greying out the saliency map's hottest
    8x8 patch lowers the predicted class's probability more than a random 8x8 patch does."""
    from fastapi.testclient import TestClient
    from PIL import Image

    from emotion.serve import ServeSettings, create_app

    from .serve_fixtures import FACE_MODEL, encode

    whole = "detect_face=false"  # demo images are face crops: classify (and explain) all of it

    def probability(client: TestClient, image: np.ndarray, target: str) -> float:
        files = {"file": ("face.png", encode(image), "image/png")}
        return client.post(f"/predict?{whole}", files=files).json()["predictions"][target]

    def occluded(image: np.ndarray, top: int, left: int, side: int) -> np.ndarray:
        copy = image.copy()
        copy[top : top + side, left : left + side] = 128
        return copy

    test = pd.read_csv(project / "data/processed/balance/test.csv", keep_default_na=False)
    rng = np.random.default_rng(0)
    hot, random = [], []
    settings = ServeSettings(model_dir=project / "models", face_model=FACE_MODEL)
    with TestClient(create_app(settings)) as client:
        for path in test["path"].head(24):
            image = np.asarray(Image.open(project / path).convert("L"))
            files = {"file": ("face.png", encode(image), "image/png")}
            body = client.post(f"/predict?explain=true&{whole}", files=files).json()
            target, saliency = body["predicted_class"], body["saliency"]
            assert saliency["box"] == {"x": 0, "y": 0, "width": 48, "height": 48}
            heat = np.asarray(Image.open(io.BytesIO(base64.b64decode(saliency["png"]))), float)
            side = saliency["patch"]
            windows = np.lib.stride_tricks.sliding_window_view(heat, (side, side)).sum((2, 3))
            top, left = np.unravel_index(windows.argmax(), windows.shape)
            base = body["predictions"][target]
            hot.append(base - probability(client, occluded(image, top, left, side), target))
            for t, s in rng.integers(0, 48 - side + 1, (5, 2)):
                random.append(base - probability(client, occluded(image, t, s, side), target))
    assert np.mean(hot) > 0
    assert np.mean(hot) > 2 * np.mean(random)


@pytest.mark.slow
def test_failed_export_under_dvc_writes_no_model_and_checkout_restores_the_last_good_one(
    project: Path,
) -> None:
    """DVC deletes a stage's outputs before running it: a failed export leaves no model that did
    not pass its parity check; `dvc checkout export` (+ git for metrics) restores the last good."""
    before = tree_digest(project / "models")
    params = (project / "params.yaml").read_text()
    data = yaml.safe_load(params)
    data["export"]["parity_atol"] = 1e-15
    (project / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    done = run(["dvc", "repro", "-s", "export"], project, check=False)
    (project / "params.yaml").write_text(params)
    assert done.returncode != 0
    assert "ONNX parity failed" in done.stderr
    assert "dvc checkout export" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (project / "models/model.onnx").exists()
    assert not list((project / "models").glob(".export-*"))
    run(["git", "checkout", "--", "metrics", "reports"], project)  # cache: false: in git
    run(["dvc", "checkout", "export"], project)
    assert tree_digest(project / "models") == before
    assert stale_stages(project) == set()


def _mutate(value: Any) -> Any:
    if value is None:
        return 64
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return round(value * 1.1 + 0.01, 6)
    if isinstance(value, str):
        return {"fail": "skip", "skip": "fail"}.get(value, value + "_changed")
    if isinstance(value, list):
        return [*value, value[-1]] if value else ["data/extra/made_up"]
    if isinstance(value, dict):
        return {**value, "extra_key": next(iter(value.values()))}
    raise TypeError(value)


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(all_leaf_keys()))
def test_editing_one_key_stales_exactly_the_stages_that_read_it(project: Path, key: str) -> None:
    path = project / "params.yaml"
    original = path.read_text()
    data = yaml.safe_load(original)
    section, name = key.split(".", 1)
    data[section][name] = _mutate(data[section][name])
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        expected = {stage for stage in STAGE_SECTIONS if key in stage_leaf_keys(stage)}
        expected |= {  # stages with a dependency named by this key (`${ingest.source}`)
            stage for stage, spec in DVC_STAGES.items() if f"${{{key}}}" in spec.get("deps", [])
        }
        assert expected, f"{key} is read by no stage"
        assert stale_stages(project) == expected
    finally:
        path.write_text(original)
    assert stale_stages(project) == set()


@pytest.mark.slow
def test_push_then_fresh_clone_and_pull_restores_the_workspace(
    project: Path, tmp_path: Path
) -> None:
    run(["dvc", "push"], project)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    assert not (clone / "data/raw/demo").exists()
    run(["dvc", "pull"], clone)
    for folder in ("data", "models", "assets"):
        assert tree_digest(clone / folder) == tree_digest(project / folder)
    assert stale_stages(clone) == set()
    assert run(["dvc", "metrics", "diff", "--json"], clone).stdout.strip() in ("", "{}")


@pytest.mark.slow
def test_failing_stage_names_the_file_and_checkout_restores_its_outputs(project: Path) -> None:
    """A corrupt image fails ingest under `dvc repro`, naming the file; `dvc checkout ingest`
    (+ git for metrics and plots) restores the last good outputs."""
    broken = project / "data/raw/demo/happy/broken.png"
    broken.write_text("not an image")
    manifest = (project / "data/interim/ingest/manifest.csv").read_bytes()
    done = run(["dvc", "repro", "-s", "ingest"], project, check=False)
    assert done.returncode != 0
    assert "broken.png: not a recognised image format" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list((project / "data/interim").glob(".ingest*"))  # no temp leftovers
    broken.unlink()
    run(["git", "checkout", "--", "metrics", "reports", "plots"], project)  # cache: false: in git
    run(["dvc", "checkout", "ingest"], project)
    assert (project / "data/interim/ingest/manifest.csv").read_bytes() == manifest
    assert stale_stages(project) == set()


@pytest.mark.slow
def test_with_a_real_source_demo_data_changes_do_not_rerun_ingest(
    project: Path, tmp_path: Path
) -> None:
    external = tmp_path / "external"
    for i, label in enumerate(["happy", "sad", "Fear", "surprise", "neutral", "angry"] * 10):
        (external / "train" / label).mkdir(parents=True, exist_ok=True)
        (external / "train" / label / f"{i}.png").write_bytes(image_bytes(100 + i))
    set_params(project, {"ingest.source": str(external)})
    run(["dvc", "repro"], project)
    assert json.loads((project / "reports/eda.json").read_text())["splits"] == {"train": 60}

    set_params(project, {"demo_data.seed": 7})
    assert stale_stages(project) == {"demo_data"}
    out = run(["dvc", "repro"], project).stdout
    assert "Running stage 'demo_data'" in out
    assert "Stage 'ingest' didn't change, skipping" in out


@pytest.fixture
def project_copy(project: Path, tmp_path: Path) -> Path:
    """A throwaway copy of the ran project (its DVC cache included)."""
    dest = tmp_path / "copy"
    shutil.copytree(project, dest, symlinks=True)
    return dest


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["flip", "ten_crop"])
def test_tta_under_dvc_evaluate_and_the_independent_client_agree(
    project_copy: Path, mode: str
) -> None:
    """`evaluate.tta` reruns evaluate and export only; the exported contract serves that mode."""
    set_params(project_copy, {"evaluate.tta": mode})
    assert stale_stages(project_copy) == {"evaluate"}  # export follows via calibration.json
    run(["dvc", "repro"], project_copy)
    assert stale_stages(project_copy) == set()
    contract = json.loads((project_copy / "models/model.json").read_text())
    assert contract["tta"]["mode"] == mode
    assert json.loads((project_copy / "reports/eval.json").read_text())["tta"]["mode"] == mode
    assert_client_matches_evaluate(project_copy)


@pytest.mark.slow
def test_extra_sets_under_dvc_are_scored_and_a_corrupt_file_is_named(
    project_copy: Path,
) -> None:
    """Made-up folders in data/extra: aliases, a dropped and a missing class, then a bad file."""
    test = pd.read_csv(project_copy / "data/processed/balance/test.csv", keep_default_na=False)
    folder_of = {"happy": "Happiness", "sad": "sad", "surprised": "surprise"}
    root = project_copy / "data/extra/made_up"
    for i, row in enumerate(test[test["label"].isin(list(folder_of))].itertuples()):
        dest = root / folder_of[row.label] / f"{i:04d}{Path(row.path).suffix}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(project_copy / row.path, dest)
    (root / "disgust").mkdir()
    shutil.copyfile(dest, root / "disgust" / dest.name)
    set_params(project_copy, {"evaluate.extra_sets": ["data/extra/made_up"]})
    assert stale_stages(project_copy) == {"evaluate"}
    run(["dvc", "repro"], project_copy)
    assert stale_stages(project_copy) == set()
    scores = json.loads((project_copy / "reports/eval.json").read_text())["extra_sets"]["made_up"]
    counts = test["label"].value_counts()
    assert scores["n"] == sum(counts[c] for c in folder_of)
    assert set(scores["recall"]) == set(scores["confusion"]) == set(folder_of)
    pairs = pd.read_csv(project_copy / "plots/evaluate/extra_confusion.csv")
    assert len(pairs) == scores["n"]
    assert set(pairs["actual"]) == {f"made_up/{c}" for c in folder_of}
    (root / "sad" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthe rest is missing")
    failed = run(["dvc", "repro"], project_copy, check=False)
    assert failed.returncode != 0
    assert "made_up/sad/broken.png" in failed.stdout + failed.stderr


@pytest.mark.slow
def test_explain_measures_face_mesh_regions_when_the_source_has_no_masks(
    project_copy: Path, tmp_path: Path
) -> None:
    """The demo faces without their `_masks/` (as real data comes): `regions` and `explain`
    rerun and localisation, region ablation and the pattern table use the face-mesh regions;
    unfit faces are counted, and a new `explain.*` value reruns explain only."""
    faces = tmp_path / "faces"
    shutil.copytree(project_copy / "data/raw/demo", faces, ignore=shutil.ignore_patterns("_*"))
    set_params(project_copy, {"ingest.source": str(faces)})
    run(["dvc", "repro"], project_copy)
    regions = json.loads((project_copy / "reports/regions.json").read_text())
    assert regions["vs_source_masks"] is None
    stored = pd.read_csv(project_copy / "data/processed/regions/test.csv")
    assert len(stored) == regions["images"]
    assert int(stored["fitted"].sum()) == regions["fitted"] > 0
    explain = json.loads((project_copy / "reports/explain.json").read_text())
    probe = explain["probe"]
    assert probe["masks"] == "landmarks"
    unfit = probe["face_mesh_unfit"] or []  # an empty list is written as null
    assert not stored.set_index("path").loc[unfit, "fitted"].any()
    for method in ("gradcam", "gradcam_pp", "shap", "lime"):
        assert set(explain["methods"][method]["localisation"]) == {
            "energy_in_mask",
            "pointing_game",
            "mask_fraction",
        }
    assert set(explain["region_ablation"]) == {
        "accuracy_intact",
        "accuracy_regions_removed",
        "accuracy_random_pixels_removed",
    }
    table = explain["patterns"]["classes"]
    assert sum(entry["probes"] for entry in table.values()) == probe["face_mesh_fitted"]
    cells = pd.read_csv(project_copy / "plots/explain_regions/attribution.csv")
    assert len(cells) == 5 * sum(1 for entry in table.values() if entry["probes"])
    set_params(project_copy, {"explain.balanced_ratio": 2.0})
    assert stale_stages(project_copy) == {"explain"}
