"""params.yaml schema, per-stage loading and profiles."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from emotion.core.config import load_sections
from emotion.core.errors import ConfigError
from emotion.data.params import IngestParams
from emotion.tools import profiles
from emotion.tools.params_file import STAGE_SECTIONS, validate_params
from emotion.training.params import TrainParams


def _params(repo: Path) -> dict[str, Any]:
    return yaml.safe_load((repo / "params.yaml").read_text())


PROFILES = profiles.available(Path(__file__).parents[1] / "profiles")


def _render(repo: Path, name: str, params: Path | None = None, **kw: Any) -> str:
    return profiles.render(
        name, params=params or repo / "params.yaml", profiles_dir=repo / "profiles", **kw
    )


@pytest.mark.parametrize("name", PROFILES)
def test_every_profile_renders_to_a_valid_params_file(repo: Path, name: str) -> None:
    text = _render(repo, name)
    params = validate_params(yaml.safe_load(text))
    assert set(type(params).model_fields) == set(yaml.safe_load(text))
    assert profiles.applied_profile(text) == name


@pytest.mark.parametrize("name", PROFILES)
def test_profiles_are_overlays_not_copies(repo: Path, name: str) -> None:
    """A profile lists only keys it changes: none repeats the default it would overwrite."""
    defaults = yaml.safe_load((repo / "params.yaml").read_text())
    for keys, where in profiles.overlay_chain(name, repo / "profiles"):
        for dotted, value in keys.items():
            section, key = dotted.split(".", 1)
            assert defaults[section][key] != value, f"{where}: {dotted} repeats the default"


def test_edited_params_keep_their_edits_under_a_profile(repo: Path, tmp_path: Path) -> None:
    """The DVC loop (edit params.yaml or `dvc exp apply`, commit) then a profile: edits stay."""
    target = tmp_path / "params.yaml"
    edited = (repo / "params.yaml").read_text().replace("head_lr: ", "head_lr: 0.0123 #", 1)
    target.write_text(edited)
    params = validate_params(
        yaml.safe_load(profiles.use("fer2013-cpu", params=target, profiles_dir=repo / "profiles"))
    )
    assert params.train.head_lr == 0.0123
    assert params.ingest.source == "data/external/fer2013"
    assert "# one section per stage" in target.read_text().lower()  # comments kept


def test_a_second_profile_is_refused_unless_forced(repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "params.yaml"
    target.write_text((repo / "params.yaml").read_text())
    profiles.use("workstation", params=target, profiles_dir=repo / "profiles")
    assert _render(repo, "workstation", target) == target.read_text()  # same one: idempotent
    with pytest.raises(ConfigError, match=r"already has profile 'workstation'.*git restore"):
        profiles.use("fer2013-cpu", params=target, profiles_dir=repo / "profiles")
    forced = _render(repo, "fer2013-cpu", target, force=True)
    assert profiles.applied_profile(forced) == "fer2013-cpu"
    assert forced.count(profiles.MARKER) == 1


def test_real_data_profiles_point_ingest_at_real_data(repo: Path) -> None:
    for name in ("fer2013-cpu", "workstation"):
        params = validate_params(yaml.safe_load(_render(repo, name)))
        assert params.ingest.source != "data/raw/demo"


def test_missing_key_names_key_and_expected_type(repo: Path) -> None:
    data = _params(repo)
    del data["demo_data"]["count"]
    with pytest.raises(ConfigError, match=r"missing key 'demo_data.count' \(expected int >= 1\)"):
        validate_params(data)


def test_misspelt_key_suggests_the_right_one(repo: Path) -> None:
    data = _params(repo)
    data["ingest"]["on_corupt"] = data["ingest"].pop("on_corrupt")
    with pytest.raises(ConfigError) as err:
        validate_params(data)
    assert "unknown key 'ingest.on_corupt'; did you mean 'ingest.on_corrupt'?" in str(err.value)
    assert "missing key 'ingest.on_corrupt'" in str(err.value)


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("demo_data", "count", "many", "expected int >= 1"),
        ("demo_data", "count", 0, "greater than or equal to 1"),
        ("demo_data", "jpeg_fraction", 1.5, "expected float >= 0.0 <= 1.0"),
        ("ingest", "on_corrupt", "ignore", "expected one of 'fail', 'skip'"),
        ("ingest", "classes", "happy", "expected list[str]"),
        ("demo_data", "scale_range", [1.2, 1.0], "scale_range must satisfy"),
    ],
)
def test_ill_typed_value_names_key_and_expected_type(
    repo: Path, section: str, key: str, value: Any, expected: str
) -> None:
    data = _params(repo)
    data[section][key] = value
    with pytest.raises(ConfigError) as err:
        validate_params(data, "params.yaml")
    assert "params.yaml: 1 invalid setting(s)" in str(err.value)
    assert key in str(err.value)
    assert expected in str(err.value)


def test_cross_field_checks(repo: Path) -> None:
    data = _params(repo)
    data["demo_data"]["class_proportions"]["happy"] += 0.2
    data["ingest"]["aliases"]["joy"] = "joyful"
    with pytest.raises(ConfigError) as err:
        validate_params(data)
    assert "class_proportions must sum to 1" in str(err.value)
    assert "aliases map to names that are not in classes: ['joyful']" in str(err.value)


def test_the_class_list_is_ingest_classes_and_synthesis_follows_it(repo: Path) -> None:
    """``ingest.classes`` is the one list of classes; a section naming classes must agree."""
    data = _params(repo)
    data["ingest"].update(classes=["angry", "happy", "sad"], aliases={})
    with pytest.raises(ConfigError) as err:
        validate_params(data)
    message = str(err.value)
    assert "synth.expressions needs one phrase per class ['angry', 'happy', 'sad']" in message
    assert "unknown ['fearful', 'neutral', 'surprised']" in str(err.value)
    data["synth"]["expressions"] = {c: "a face" for c in data["ingest"]["classes"]}
    assert validate_params(data).ingest.classes == ["angry", "happy", "sad"]


def test_a_stage_loads_and_validates_only_its_sections(repo: Path, tmp_path: Path) -> None:
    data = _params(repo)
    data["demo_data"]["count"] = "not a number"  # another stage's problem
    data["ingest"]["on_corrupt"] = "maybe"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_sections(path, ingest=IngestParams)
    assert f"{path}: 1 invalid setting(s)" in str(err.value)
    assert "key 'ingest.on_corrupt'" in str(err.value)
    data["ingest"]["on_corrupt"] = "skip"
    path.write_text(yaml.safe_dump(data))
    p = load_sections(path, ingest=IngestParams)
    assert p.ingest.on_corrupt == "skip"
    assert not hasattr(p, "demo_data")
    assert set(STAGE_SECTIONS) >= {"demo_data", "ingest"}


def test_a_missing_section_is_named(repo: Path, tmp_path: Path) -> None:
    data = _params(repo)
    del data["train"]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="missing key 'train'"):
        load_sections(path, train=TrainParams)


def test_profile_use_with_override_writes_validated_params(repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "params.yaml"
    target.write_text((repo / "params.yaml").read_text())
    cmd = [
        sys.executable,
        "-m",
        "emotion.tools.cli",
        "profile",
        "use",
        "fer2013-cpu",
        "--set",
        "ingest.source=/data/fer2013.csv",
        "--set",
        "ingest.samples_per_class=4",
        "--params",
        str(target),
        "--profiles-dir",
        str(repo / "profiles"),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert "profile 'fer2013-cpu' applied" in done.stdout
    data = yaml.safe_load(target.read_text())
    assert data["ingest"]["source"] == "/data/fer2013.csv"
    assert data["ingest"]["samples_per_class"] == 4
    assert "# one section per stage" in target.read_text().lower()  # comments survive


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("ingest.sorce=x", "key 'ingest.sorce' does not exist"),
        ("demo_data.count=lots", "key 'demo_data.count': Input should be a valid integer"),
        ("nonsense", "--set expects key=value"),
    ],
)
def test_bad_override_fails_without_touching_params(
    repo: Path, tmp_path: Path, override: str, message: str
) -> None:
    target = tmp_path / "params.yaml"
    target.write_text((repo / "params.yaml").read_text())
    cmd = [
        sys.executable,
        "-m",
        "emotion.tools.cli",
        "profile",
        "use",
        "fer2013-cpu",
        "--set",
        override,
        "--params",
        str(target),
        "--profiles-dir",
        str(repo / "profiles"),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert target.read_text() == (repo / "params.yaml").read_text()


def test_unknown_profile_lists_available(repo: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown profile 'gpu'; available: \['fer2013-cpu', 'workstation'"
    ):
        _render(repo, "gpu")


@pytest.mark.parametrize("name", [None, *PROFILES])
def test_hub_models_are_pinned_to_a_commit(repo: Path, name: str | None) -> None:
    """A hub id without a revision gives different weights as the hub changes."""
    text = (repo / "params.yaml").read_text() if name is None else _render(repo, name)
    synth = validate_params(yaml.safe_load(text)).synth
    if synth.model_id != "tiny" and not (repo / synth.model_id).exists():
        assert synth.model_id != "runwayml/stable-diffusion-v1-5"  # removed from the Hub in 2024
        assert re.fullmatch(r"[0-9a-f]{40}", synth.revision or ""), synth.revision


def test_the_cli_starts_without_the_ml_stack() -> None:
    """The PR-report workflow installs only dvc, pydantic, pyyaml and ruamel.yaml for `emotion`."""
    code = (
        "import sys, emotion.tools.cli\n"
        "heavy = {'numpy', 'torch', 'PIL', 'pandas', 'mediapipe', 'fastapi', 'onnxruntime'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def _check(params: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "emotion.tools.cli", "check", "--params", str(params)]
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("ingest:\n", "ingest:\n  source: data/raw/x\n"), "found key 'source' a second time"),
        (("name: emotion_cnn_s", "name: resnet9000"), "'resnet9000' is not a timm model"),
    ],
)
def test_check_refuses_duplicate_keys_and_unknown_backbones(
    repo: Path, tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    text = (repo / "params.yaml").read_text()
    assert edit[0] in text
    target = tmp_path / "params.yaml"
    target.write_text(text.replace(*edit, 1))
    done = _check(target)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert _check(repo / "params.yaml").returncode == 0


def test_a_key_set_twice_is_refused(repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "params.yaml"
    target.write_text((repo / "params.yaml").read_text())
    cmd = [sys.executable, "-m", "emotion.tools.cli", "profile", "use", "fer2013-cpu",
           "--set", "train.epochs=3", "--set", "train.epochs=4", "--params", str(target),
           "--profiles-dir", str(repo / "profiles")]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 2
    assert "--set train.epochs is given twice" in done.stderr
    assert target.read_text() == (repo / "params.yaml").read_text()


def test_the_profile_excerpt_in_the_docs_is_the_profile(repo: Path) -> None:
    """docs/profiles.md quotes profiles/fer2013-cpu.yaml: every quoted key has its real value."""
    docs = (repo / "docs/profiles.md").read_text()
    block = docs.split("# profiles/fer2013-cpu.yaml", 1)[1].split("\n", 1)[1].split("```", 1)[0]
    quoted = yaml.safe_load(block.replace("  ...", ""))["set"]
    actual = yaml.safe_load((repo / "profiles/fer2013-cpu.yaml").read_text())["set"]
    assert quoted
    assert {key: actual.get(key) for key in quoted} == quoted
