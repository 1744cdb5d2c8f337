"""Code layout: packages in layers (imports only run down), one entry module per stage, thin
stage scripts, short functions and classes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import REPO, emotion_imports

SRC = REPO / "src" / "emotion"
#: Each package imports only packages on lower layers (and its own modules).
LAYERS = {
    "core": 0,
    "assets": 1,
    "demo_data": 1,
    "regions": 1,
    "vision": 1,
    "data": 2,
    "export": 2,
    "release": 3,
    "serve": 3,
    "synthesize": 3,
    "training": 3,
    "explain": 4,
    "predict": 4,
    "stages": 5,
    "tools": 6,
}
MAX_LINES = 60
MAX_CLASS_LINES = 250


def _module(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


MODULES = {_module(p): p for p in sorted(SRC.rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    """The project modules ``path`` imports (the package root aside)."""
    return {name for name in emotion_imports(path) if name in MODULES and name != "emotion"}


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_module_lives_in_a_package() -> None:
    """Only the package root (class names) sits at the top; everything else has a home."""
    top = sorted(p.name for p in SRC.glob("*.py"))
    assert top == ["__init__.py"]
    assert {_package(m) for m in MODULES} - {None} == set(LAYERS)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _package(m)))
def test_imports_run_down_the_layers(module: str) -> None:
    own = _package(module)
    for target in _imports(MODULES[module]):
        other = _package(target)
        if other is None or other == own:
            continue
        assert LAYERS[other] < LAYERS[own], f"{module} ({own}) imports {target} ({other})"


def test_no_import_cycle() -> None:
    graph = {m: _imports(p) for m, p in MODULES.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*trail, node, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


@pytest.mark.parametrize("script", sorted((REPO / "stages").glob("*.py")), ids=lambda p: p.stem)
def test_stage_scripts_only_wire(script: Path) -> None:
    """Paths + the typed params section + one library call: short, no logic of their own."""
    tree = ast.parse(script.read_text())
    assert len(script.read_text().splitlines()) <= MAX_LINES
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert functions == ["main"], f"{script.name} defines {functions}"


STAGE_NAMES = sorted(p.stem for p in (REPO / "stages").glob("*.py"))


def test_each_stage_has_one_entry_module_named_for_it() -> None:
    """Stage ``X``: DVC runs ``stages/X.py``, which calls ``run_X`` of ``emotion.stages.X``;
    nothing else in ``emotion.stages``, and no ``run_<stage>`` anywhere else."""
    import yaml

    dvc_stages = sorted(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])
    entry_modules = sorted(p.stem for p in (SRC / "stages").glob("*.py") if p.stem != "__init__")
    assert STAGE_NAMES == dvc_stages == entry_modules
    for name in STAGE_NAMES:
        script = emotion_imports(REPO / "stages" / f"{name}.py")
        assert f"emotion.stages.{name}.run_{name}" in script, f"stages/{name}.py"
    runs = {
        (node.name, _module(path))
        for path in SRC.rglob("*.py")
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef) and node.name in {f"run_{s}" for s in STAGE_NAMES}
    }
    assert runs == {(f"run_{s}", f"emotion.stages.{s}") for s in STAGE_NAMES}


def test_a_package_for_one_stage_is_named_for_it() -> None:
    """The packages that serve a single stage carry its name (no ``synth`` beside
    ``synthesize``)."""
    single = {"assets", "demo_data", "regions", "synthesize", "explain", "export"}
    assert single <= set(LAYERS) & set(STAGE_NAMES)


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: _module(p))
def test_functions_are_short(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_LINES, f"{node.name} is {length} lines"


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: _module(p))
def test_classes_are_short(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_CLASS_LINES, f"class {node.name} is {length} lines"


def test_the_released_model_has_one_path() -> None:
    """`make try` serves, and `emotion predict` defaults to, the same released model folder."""
    from emotion.export.contract import ModelContract
    from emotion.release.bundle import verify_release
    from emotion.serve.settings import RELEASED_MODEL

    makefile = (REPO / "Makefile").read_text()
    assert f"RELEASE ?= {RELEASED_MODEL.as_posix()}\n" in makefile
    files = verify_release(REPO / RELEASED_MODEL)  # every file matches SHA256SUMS and model.json
    assert {"model.onnx", "model.int8.onnx", "model.json", "MODEL_CARD.md"} <= set(files)
    contract = ModelContract.load(REPO / RELEASED_MODEL / "model.json")
    assert contract.source["training_data"]["name"] == "fer2013"
    assert contract.source["training_data"]["photos"] is True


def test_serve_options_default_to_the_settings_object() -> None:
    """`emotion serve` restates no default: each option's default is ServeSettings' field."""
    import dataclasses

    from emotion.serve.settings import ServeSettings
    from emotion.tools.cli import build_parser

    serve = build_parser()._subparsers._group_actions[0].choices["serve"]
    defaults = {a.dest: a.default for a in serve._actions}
    for field in dataclasses.fields(ServeSettings):
        assert defaults[field.name] == field.default, field.name


# --------------------------------------------------------------------- facts kept in one place


def _string_sets(path: Path) -> list[set[str]]:
    """The string elements of every list, tuple, set and dict-key literal in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
        if isinstance(node, ast.List | ast.Tuple | ast.Set | ast.Dict) and items:
            found.append({i.value for i in items if isinstance(i, ast.Constant)})
    return found


def test_the_class_list_is_written_once() -> None:
    """``ingest.classes`` in params.yaml is the classes' one list (data, checkpoint and model
    contract carry it on); in the code only the demo generator's prototypes name them all."""
    from emotion.tools.params_file import load_params

    classes = set(load_params(REPO / "params.yaml").ingest.classes)
    generator = SRC / "demo_data" / "expressions.py"
    for path in sorted(SRC.rglob("*.py")):
        for strings in _string_sets(path):
            if classes <= strings and path != generator:
                pytest.fail(f"{_module(path)} lists the classes again")


def test_the_face_crop_margin_is_one_key() -> None:
    """Synthetic crops and the served model's crop frame the face the same way."""
    from emotion.tools.params_file import all_leaf_keys

    assert [k for k in all_leaf_keys() if k.endswith("margin")] == ["crop.face_margin"]


def test_user_errors_become_exit_status_2_in_one_place() -> None:
    """Stage scripts and the ``emotion`` command both use core.errors.exit_on_user_error."""
    exits = [
        _module(path)
        for path in sorted(SRC.rglob("*.py"))
        if "sys.exit(2)" in path.read_text() or "SystemExit(2)" in path.read_text()
    ]
    assert exits == ["emotion.core.errors"]


def test_json_handed_between_stages_is_read_by_one_helper() -> None:
    """Missing or malformed JSON gets the same named error everywhere (core.reading); a cache
    that treats an unreadable entry as a miss raises nothing and is not counted."""
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        own = all(word in text for word in ("json.loads", "FileNotFoundError", "DataError"))
        if path.name != "reading.py" and own:
            pytest.fail(f"{_module(path)} reads JSON with its own not-found handling")


@pytest.mark.parametrize("script", sorted((REPO / "stages").glob("*.py")), ids=lambda p: p.stem)
def test_a_stage_script_loads_the_sections_its_stage_declares(script: Path) -> None:
    """Which sections a stage reads is STAGE_SECTIONS; dvc.yaml is checked against it in
    test_dvc_wiring, and each script's ``load_sections`` call here."""
    from emotion.tools.params_file import STAGE_SECTIONS

    calls = [
        node
        for node in ast.walk(ast.parse(script.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "load_sections"
    ]
    loaded = {kw.arg for call in calls for kw in call.keywords}
    assert loaded == {entry.partition(".")[0] for entry in STAGE_SECTIONS[script.stem]}
