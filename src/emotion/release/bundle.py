"""Write and verify a release folder.

``emotion release --out release/NAME`` takes a finished run (``dvc status`` clean up to
``export``) and writes, atomically:

* ``model.onnx``, ``model.int8.onnx`` and ``model.json``: the exported model and its contract
  (dataset card included), loadable by ``emotion serve --model-dir`` and the on-device client;
* ``MODEL_CARD.md``: the export stage's card plus a Release section (commit, params overlay,
  dataset digest, ``dvc.lock`` hashes);
* ``params.overlay.yaml``: the run's params over the committed defaults, as a profile;
* ``release.json``: all of it machine-readable, with the headline metrics;
* ``SHA256SUMS``: the digest of every other file (``sha256sum -c SHA256SUMS`` checks them).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from emotion.core.atomic import replace_dir, write_json, write_text
from emotion.core.errors import DataError, EmotionError
from emotion.core.hashing import sha256_file
from emotion.core.reading import read_json
from emotion.export.contract import CONTRACT_FILE, ModelContract
from emotion.release.provenance import overlay_yaml, provenance

CARD = "MODEL_CARD.md"
SUMS = "SHA256SUMS"
MANIFEST = "release.json"
OVERLAY = "params.overlay.yaml"


def check_finished(project: Path) -> None:
    """EmotionError unless ``dvc status`` shows nothing to rerun up to ``export``."""
    from dvc.repo import Repo  # heavy: only when releasing

    with Repo(str(project)) as repo:
        stale = repo.status(targets=["export"], with_deps=True)
    if stale:
        raise EmotionError(
            f"{project}: the run is not finished or not current (`dvc status export` lists"
            f" {', '.join(sorted(stale))}); run `dvc repro export` first"
        )


def headline(project: Path) -> dict[str, Any]:
    """The figures a release is compared by, from the eval and export reports (``reports/``)."""
    fix = "run `dvc repro export`"
    evaluation = read_json(project / "reports/eval.json", "evaluation report", fix)
    export = read_json(project / "reports/export.json", "export report", fix)
    cal = evaluation["calibration"]
    out = {
        "test": {k: evaluation[k] for k in ("n", "accuracy", "macro_f1", "weighted_f1")},
        "calibration": {
            "temperature": cal["temperature"],
            "test_nll": cal["calibrated"]["nll"],
            "test_ece": cal["calibrated"]["ece"],
        },
        "tta": evaluation["tta"],
        "int8_accuracy_delta": export["int8"]["accuracy_delta"],
        "per_class": evaluation["per_class"],
    }
    if evaluation.get("validation"):
        out["validation"] = evaluation["validation"]
    return out


def release_section(name: str, facts: dict[str, Any], overlay: str) -> str:
    """The card's Release section."""
    data = facts["dataset"]
    rows = []
    for stage, hashes in facts["dvc_lock"].items():
        outs = ", ".join(f"`{p}` {h.get('md5', '')[:12]}" for p, h in hashes["outs"].items())
        rows.append(f"| `{stage}` | {outs} |")
    return "\n".join(
        [
            "",
            f"## Release `{name}`",
            "",
            f"- Made by `emotion release` from commit `{facts['commit']}`"
            f" (profile `{facts['profile']}`); files changed since that commit:"
            f" {', '.join(f'`{p}`' for p in facts['changed_since_commit']) or 'none'}.",
            f"- Dataset `{data['path']}`: DVC digest `{data.get('md5')}`, {data.get('nfiles')}"
            f" files, {data.get('size')} bytes.",
            "- Params over the defaults (`params.overlay.yaml`):",
            "",
            "```yaml",
            overlay.rstrip(),
            "```",
            "",
            "| stage | outputs (`dvc.lock` md5) |",
            "|---|---|",
            *rows,
            "",
            f"Every file's SHA-256 is in `{SUMS}` (`sha256sum -c {SUMS}`).",
            "",
        ]
    )


def make_release(project: Path, out: Path, *, force: bool = False) -> Path:
    """Write the release folder ``out`` from the finished run in ``project`` (see above)."""
    if out.exists() and not force:
        raise EmotionError(f"{out}: already exists; choose another --out or pass --force")
    check_finished(project)
    models = project / "models"
    contract = ModelContract.load(models / CONTRACT_FILE)
    facts = provenance(project)
    overlay = overlay_yaml(facts["params_overlay"], facts["profile"])
    with replace_dir(out) as tmp:
        for entry in contract.files.values():
            shutil.copy2(models / entry["path"], tmp / entry["path"])
        shutil.copy2(models / CONTRACT_FILE, tmp / CONTRACT_FILE)
        card = (models / CARD).read_text(encoding="utf-8")
        write_text(tmp / CARD, card.rstrip() + "\n" + release_section(out.name, facts, overlay))
        write_text(tmp / OVERLAY, overlay)
        manifest = {
            "name": out.name,
            "model": contract.source.get("model_name"),
            "training_data": contract.source.get("training_data"),
            "metrics": headline(project),
            **facts,
        }
        write_json(tmp / MANIFEST, manifest)
        files = sorted(p.name for p in tmp.iterdir())
        sums = "".join(f"{sha256_file(tmp / f)}  {f}\n" for f in files)
        write_text(tmp / SUMS, sums)
    verify_release(out)
    return out


def verify_release(folder: Path) -> dict[str, str]:
    """DataError unless every file matches ``SHA256SUMS`` and the contract's digests, and no
    file is missing or extra; returns file -> SHA-256."""
    try:
        lines = (folder / SUMS).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"{folder / SUMS}: not found; not a release folder") from None
    listed = dict(reversed(line.split("  ", 1)) for line in lines if line)
    present = {p.name for p in folder.iterdir()} - {SUMS}
    if present != set(listed):
        raise DataError(
            f"{folder}: files {sorted(present ^ set(listed))} are missing or not in {SUMS}"
        )
    for name, digest in listed.items():
        if sha256_file(folder / name) != digest:
            raise DataError(f"{folder / name}: SHA-256 differs from {SUMS}; the file changed")
    contract = ModelContract.load(folder / CONTRACT_FILE)
    for entry in contract.files.values():
        if listed.get(entry["path"]) != entry["sha256"]:
            raise DataError(f"{folder / entry['path']}: not the file {CONTRACT_FILE} describes")
    return listed
