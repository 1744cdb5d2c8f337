"""DVC workflows as users run them: the `dvc` CLI in a temp copy of the repo, tiny config.

A code edit and a forced rerun of train, training killed under `dvc repro` and resumed, a
training run watched through `dvc metrics show` while it runs, returning to a configuration
that already ran (run-cache, also pushed to a teammate), a queued grid sweep that trains and is
compared and applied, a temporary experiment, and a real dataset shared through `dvc add` /
`dvc push` / `dvc pull`.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from emotion.training import checkpoint

from .conftest import (
    CACHED,
    TRAINED,
    commit,
    image_bytes,
    log_of,
    md5,
    params_set,
    ran_project,
    run,
    set_params,
    stale_stages,
    teammate_restores_without_training,
    tool_env,
    tree_digest,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
LIVE = "plots/train/live"  # the train stage's dvclive log


def resume_states(project: Path) -> list[Path]:
    return sorted((project / ".scratch/train").glob("*/last.pth"))


def live_log(project: Path) -> dict[str, Any]:
    """The dvclive log's files (metrics.json parsed), timing series and values left out."""
    root = project / LIVE
    files: dict[str, Any] = {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "metrics.json" and "/timing/" not in p.as_posix()
    }
    summary = json.loads((root / "metrics.json").read_text())
    assert set(summary.pop("timing")) == {"epoch_s", "images_per_s", "loader_seconds_fraction"}
    return {**files, "metrics.json": summary}


def live_step(project: Path) -> int:
    """The last epoch the dvclive log holds (0: none yet; dvclive rewrites the file in place)."""
    try:
        return int(json.loads((project / LIVE / "metrics.json").read_text())["step"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed copy of the repo after one tiny `dvc repro`, with a local DVC remote."""
    return ran_project(tmp_path_factory.mktemp("workflows") / "project")


def test_editing_a_train_dependency_reruns_train_with_every_output(project: Path) -> None:
    """A comment in the trainer or the stage script: train reruns from scratch, outputs complete;
    undoing the edit restores the earlier run from the run-cache."""
    best = md5(project / "models/best_model.pth")
    edited = [project / "src/emotion/training/trainer.py", project / "stages/train.py"]
    originals = [p.read_text() for p in edited]
    for path, text in zip(edited, originals, strict=True):
        path.write_text(text + "\n# a comment\n")
    assert stale_stages(project) == {"train"}
    out = log_of(run(["dvc", "repro"], project))
    assert "Running stage 'train'" in out
    assert "epoch 2/2" in out
    assert "resuming" not in out
    assert md5(project / "models/best_model.pth") == best  # same weights: downstream skipped
    assert "Stage 'evaluate' didn't change, skipping" in out
    assert stale_stages(project) == set()
    assert resume_states(project) == []  # a finished run leaves no resume state
    for path, text in zip(edited, originals, strict=True):
        path.write_text(text)
    out = log_of(run(["dvc", "repro"], project))
    assert CACHED.format("train") in out
    assert TRAINED not in out


def test_forced_rerun_of_train_retrains(project: Path) -> None:
    best = md5(project / "models/best_model.pth")
    out = log_of(run(["dvc", "repro", "-f", "-s", "train"], project))
    assert "Running stage 'train'" in out
    assert out.count(TRAINED) == 2
    assert "resuming" not in out
    assert md5(project / "models/best_model.pth") == best
    assert stale_stages(project) == set()


def _kill_training_after_first_epoch(project: Path) -> None:
    """`dvc repro` as a user runs it; the training process is killed (SIGKILL) after epoch 1."""
    proc = subprocess.Popen(
        ["dvc", "repro", "-s", "train"],
        cwd=project,
        env=tool_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not resume_states(project):
        assert proc.poll() is None, f"train ended before it could be killed:\n{proc.stdout.read()}"
        assert time.monotonic() < deadline, "no resume state after 300 s"
        time.sleep(0.05)
    trainers = [
        p
        for p in psutil.Process(proc.pid).children(recursive=True)
        if any("stages/train.py" in part for part in p.cmdline())
    ]
    assert trainers
    for p in trainers:
        p.kill()
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, output
    assert "failed to reproduce 'train'" in output


def test_training_killed_under_dvc_resumes_and_matches_an_uninterrupted_run(
    project: Path,
) -> None:
    with params_set(project, train__epochs=3):
        _kill_training_after_first_epoch(project)
        assert not (project / "models/best_model.pth").exists()  # DVC deleted it before the run
        (state,) = resume_states(project)
        done = checkpoint.load(state)["epoch"]
        assert 1 <= done < 3
        out = log_of(run(["dvc", "repro", "-s", "train"], project))
        assert f"resuming from {state} after epoch {done}" in out
        assert out.count(TRAINED) == 3 - done  # only the epochs still to do
        resumed = {
            rel: (project / rel).read_bytes()
            for rel in ("models/best_model.pth", "reports/train.json")
        }
        resumed_log = live_log(project)  # rebuilt from the resume state, then continued
        assert resumed_log["metrics.json"]["step"] == 3
        assert resume_states(project) == []
        out = log_of(run(["dvc", "repro", "-f", "-s", "train"], project))
        assert out.count(TRAINED) == 3
        for rel, data in resumed.items():
            assert (project / rel).read_bytes() == data, rel
        assert live_log(project) == resumed_log
    run(["dvc", "repro"], project)  # back to the committed configuration (run-cache)
    assert stale_stages(project) == set()


def _workspace_live_metrics(project: Path) -> dict[str, Any]:
    """The workspace's dvclive summary as `dvc metrics show --json <file>` reports it."""
    shown = json.loads(
        run(["dvc", "metrics", "show", "--json", f"{LIVE}/metrics.json"], project).stdout
    )
    (workspace,) = shown.values()
    return workspace["data"][f"{LIVE}/metrics.json"]["data"]


def test_a_training_run_is_visible_to_dvc_while_it_runs(project: Path) -> None:
    """`dvc exp run`: each finished epoch lands in the dvclive log, and `dvc metrics show` of its
    summary reports it while training still runs; the finished run's log holds every epoch."""
    epochs = 25
    with params_set(project, train__epochs=epochs, train__patience=epochs):
        proc = subprocess.Popen(
            ["dvc", "exp", "run", "-n", "watched", "train"],
            cwd=project,
            env=tool_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 300
            while live_step(project) < 1:
                assert proc.poll() is None, f"train ended first:\n{proc.stdout.read()}"
                assert time.monotonic() < deadline, "no finished epoch after 300 s"
                time.sleep(0.1)
            mid_run = _workspace_live_metrics(project)
            assert proc.poll() is None, "training ended before `dvc metrics show` returned"
            output, _ = proc.communicate(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, output
        assert 1 <= mid_run["step"] < epochs
        assert 0 <= mid_run["val"]["accuracy"] <= 1
        assert set(mid_run) == {"step", "train", "val", "val_ema", "gap", "timing"}
        assert live_step(project) == epochs
        tsv = (project / LIVE / "plots/metrics/val/accuracy.tsv").read_text().splitlines()
        assert len(tsv) == 1 + epochs
        shown = json.loads(run(["dvc", "plots", "show", "--json"], project).stdout)
        assert f"{LIVE}/plots/metrics/val/accuracy.tsv" in shown["data"]
    run(["dvc", "exp", "remove", "watched"], project)
    run(["dvc", "repro"], project)  # back to the committed configuration (run-cache)
    assert stale_stages(project) == set()


def test_the_number_of_training_processes_decides_a_rerun(project: Path) -> None:
    """`train.processes` is a param: two gloo processes under torchrun retrain (the committed
    one-process run is not restored for them), returning to one process restores that run from
    the run-cache, and a launcher that starts another number of processes is refused."""
    best = md5(project / "models/best_model.pth")
    two = {"train__launcher": "torchrun --standalone --nproc_per_node=2", "train__processes": 2}
    with params_set(project, **two):
        assert "train" in stale_stages(project)
        out = log_of(run(["dvc", "repro", "train"], project))
        assert "world size 2" in out
        assert out.count(TRAINED) == 2  # rank 0 logs each of the 2 epochs
        assert checkpoint.load(project / "models/best_model.pth")["config"]["world_size"] == 2
    out = log_of(run(["dvc", "repro", "train"], project))
    assert CACHED.format("train") in out
    assert md5(project / "models/best_model.pth") == best
    with params_set(project, train__processes=2):  # launcher still `python`: one process
        done = run(["dvc", "repro", "train"], project, check=False)
        assert done.returncode != 0
        assert "train.processes is 2 but train.launcher ('python') started 1" in log_of(done)
    run(["dvc", "repro"], project)  # back to the committed configuration (run-cache)
    assert stale_stages(project) == set()
    assert md5(project / "models/best_model.pth") == best


def test_returning_to_a_configuration_that_ran_restores_it_from_the_run_cache(
    project: Path, tmp_path: Path
) -> None:
    """A -> B -> A trains only once for B; `emotion push-run-cache` + `dvc pull --run-cache`
    + `dvc repro --pull` lets a teammate skip B too."""
    committed = yaml.safe_load(run(["git", "show", "HEAD:dvc.lock"], project).stdout)
    (best_a,) = [
        o for o in committed["stages"]["train"]["outs"] if o["path"] == "models/best_model.pth"
    ]
    with params_set(project, train__head_lr=0.0031):
        out = log_of(run(["dvc", "repro"], project))
        assert out.count(TRAINED) == 2
        best_b = md5(project / "models/best_model.pth")
        assert best_b != best_a["md5"]
    out = log_of(run(["dvc", "repro"], project))
    for stage in ("train", "evaluate", "explain", "export"):
        assert CACHED.format(stage) in out
    assert TRAINED not in out
    assert md5(project / "models/best_model.pth") == best_a["md5"]
    assert stale_stages(project) == set()

    run(["emotion", "push-run-cache"], project)  # B is not in the workspace: DVC would skip it
    clone = tmp_path / "teammate"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    teammate_restores_without_training(clone, 0.0031, best_b)


def _queue_idle(project: Path) -> bool:
    status = run(["dvc", "queue", "status"], project).stdout
    return not any(word in status for word in ("Queued", "Running"))


def _wait_for_queue(project: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    try:
        while not _queue_idle(project):
            assert time.monotonic() < deadline, run(["dvc", "queue", "status"], project).stdout
            time.sleep(3)
    finally:
        run(["dvc", "queue", "stop"], project, check=False)
    status = run(["dvc", "queue", "status"], project).stdout
    assert "Failed" not in status, status


def _experiments(project: Path) -> dict[str, dict[str, Any]]:
    """Every experiment's params and headline metrics from `dvc exp show --json`, by name."""
    found = {}
    for baseline in json.loads(run(["dvc", "exp", "show", "--json"], project).stdout):
        for exp in baseline.get("experiments") or []:
            for rev in exp.get("revs") or []:
                data = rev["data"]
                metrics = {p: m["data"] for p, m in data["metrics"].items()}
                found[exp["name"]] = {"params": data["params"]["params.yaml"]["data"], **metrics}
    return found


def test_a_training_sweep_runs_from_the_queue_and_its_best_run_is_applied(project: Path) -> None:
    """A grid sweep over a training param (DVC's `-S key=a,b,c`) queued and run by two workers
    in clean checkouts; `emotion compare` (docs/dvc.md) shows every headline metric and the
    changed param un-elided in a 200-column terminal; `dvc exp apply` + commit leaves nothing
    stale, with the applied run's metrics committed."""
    commit(project, "workspace before experiments")
    rates = [0.001, 0.002, 0.004]
    sweep = ",".join(str(r) for r in rates)
    run(["dvc", "exp", "run", "--queue", "-S", f"train.head_lr={sweep}"], project)
    run(["dvc", "queue", "start", "-j", "2"], project)
    _wait_for_queue(project, 1500)
    runs = _experiments(project)
    assert sorted(r["params"]["train"]["head_lr"] for r in runs.values()) == rates
    assert len({r["metrics/train.json"]["val_f1"] for r in runs.values()}) > 1  # each trained

    done = subprocess.run(
        ["emotion", "compare"],
        cwd=project,
        env=tool_env(COLUMNS="200"),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    shown = done.stdout
    assert max(len(line) for line in shown.splitlines()) <= 200, shown
    assert "…" not in shown, shown
    headline = {
        name
        for path in (project / "metrics").glob("*.json")
        for name in json.loads(path.read_text())
    }
    assert len(headline) >= 12
    for name in [*headline, "train.head_lr", *runs]:
        assert name in shown, f"{name} missing from:\n{shown}"
    assert "evaluate.batch_size" not in shown  # unchanged params are left out

    best = max(runs, key=lambda name: runs[name]["metrics/eval.json"]["f1"])
    run(["dvc", "exp", "apply", best], project)
    commit(project, f"apply experiment {best}")
    assert stale_stages(project) == set()
    applied = yaml.safe_load((project / "params.yaml").read_text())["train"]["head_lr"]
    assert applied == runs[best]["params"]["train"]["head_lr"]
    for rel in ("metrics/eval.json", "metrics/export.json"):
        committed = run(["git", "show", f"HEAD:{rel}"], project).stdout
        assert json.loads(committed) == runs[best][rel], rel


def test_a_temporary_experiment_runs_from_a_clean_checkout(project: Path) -> None:
    """`--temp` runs in a clean checkout: everything a stage reads (the face detector
    included) must come from git or DVC; the evaluation batch size never changes results."""
    run(["dvc", "exp", "run", "--temp", "-n", "bs128", "-S", "evaluate.batch_size=128"], project)
    shown = _experiments(project)["bs128"]
    assert shown["params"]["evaluate"]["batch_size"] == 128
    committed = json.loads((project / "metrics/eval.json").read_text())
    assert shown["metrics/eval.json"] == committed


def _dataset_archive(root: Path) -> Path:
    """A FER-style dataset (FER names, folder per label) packed as .tar.gz."""
    labels = ["happy", "sad", "Fear", "surprise", "neutral", "angry"]
    for i, label in enumerate(labels * 10):
        path = root / "faces" / "train" / label / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image_bytes(500 + i))
    archive = root / "faces.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(root / "faces", arcname="faces")
    return archive


def test_a_dataset_under_dvc_reaches_a_teammate_through_push_and_pull(
    project: Path, tmp_path: Path
) -> None:
    archive = _dataset_archive(tmp_path / "download")
    run(["emotion", "dataset", "add", str(archive), "--name", "faces"], project)
    staged = run(["git", "diff", "--cached", "--name-only"], project).stdout.split()
    assert "data/external/faces.dvc" in staged
    assert all(f.startswith("data/external/") for f in staged)
    done = run(["emotion", "dataset", "add", str(archive), "--name", "faces"], project, check=False)
    assert done.returncode == 2
    assert "data/external/faces.dvc: already records a dataset named 'faces'" in done.stderr
    set_params(project, {"ingest.source": "data/external/faces"})
    run(["dvc", "repro"], project)
    assert json.loads((project / "reports/eda.json").read_text())["total"] == 60
    commit(project, "tiny run on a real dataset")
    run(["dvc", "push"], project)

    clone = tmp_path / "teammate"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    assert not (clone / "data/external/faces").exists()
    run(["dvc", "pull"], clone)
    assert tree_digest(clone / "data/external/faces") == tree_digest(
        project / "data/external/faces"
    )
    assert stale_stages(clone) == set()
    out = log_of(run(["dvc", "repro"], clone))
    assert "Running stage" not in out
    assert "cached" not in out
