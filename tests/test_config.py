"""params.yaml schema, per-stage loading and profiles."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from emotion import profiles
from emotion.config import load_sections
from emotion.errors import ConfigError
from emotion.params.file import STAGE_SECTIONS, validate_params
from emotion.params.ingest import IngestParams
from emotion.params.train import TrainParams


def _params(repo: Path) -> dict[str, Any]:
    return yaml.safe_load((repo / "params.yaml").read_text())


@pytest.mark.parametrize("name", profiles.available(Path(__file__).parents[1] / "profiles"))
def test_every_profile_renders_to_a_valid_params_file(repo: Path, name: str) -> None:
    text = profiles.render(name, profiles_dir=repo / "profiles")
    params = validate_params(yaml.safe_load(text))
    assert set(type(params).model_fields) == set(yaml.safe_load(text))


def test_committed_params_is_the_demo_profile(repo: Path) -> None:
    assert (
        profiles.render("demo", profiles_dir=repo / "profiles")
        == (repo / "params.yaml").read_text()
    )


def test_real_data_profiles_point_ingest_at_real_data(repo: Path) -> None:
    for name in ("fer2013-cpu", "workstation"):
        params = validate_params(
            yaml.safe_load(profiles.render(name, profiles_dir=repo / "profiles"))
        )
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
    cmd = [
        sys.executable,
        "-m",
        "emotion.cli",
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
    assert "now profile 'fer2013-cpu'" in done.stdout
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
    target.write_text("untouched\n")
    cmd = [
        sys.executable,
        "-m",
        "emotion.cli",
        "profile",
        "use",
        "demo",
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
    assert target.read_text() == "untouched\n"


def test_unknown_profile_lists_available(repo: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"unknown profile 'gpu'; available: \['demo', 'fer2013-cpu'"
    ):
        profiles.render("gpu", profiles_dir=repo / "profiles")


@pytest.mark.parametrize("name", profiles.available(Path(__file__).parents[1] / "profiles"))
def test_hub_models_are_pinned_to_a_commit(repo: Path, name: str) -> None:
    """A hub id without a revision gives different weights as the hub changes."""
    synth = validate_params(
        yaml.safe_load(profiles.render(name, profiles_dir=repo / "profiles"))
    ).synth
    if synth.model_id != "tiny" and not (repo / synth.model_id).exists():
        assert synth.model_id != "runwayml/stable-diffusion-v1-5"  # removed from the Hub in 2024
        assert re.fullmatch(r"[0-9a-f]{40}", synth.revision or ""), synth.revision
