"""Per-stage wall times and results of a pipeline run, observed from `dvc repro`'s output.

Usage (from the project root; the command before the pipe is the README's, unchanged):
    make fer2013 && make repro 2>&1 \
        | python benchmarks/pipeline_report.py --log repro.log --out report.md

Every line is echoed with its arrival time (and saved to ``--log``); a stage's time runs from
its "Running stage" line to the next stage's (or the end), so it includes DVC's hashing and
caching of its outputs. At the end, a markdown table of stage times and of the run's results
(validation/test accuracy and macro-F1, model sizes, onnxruntime latency) is printed.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from pathlib import Path

RUNNING = re.compile(r"Running stage '([^']+)'")


def metric(path: str, *keys: str) -> object:
    value = json.loads(Path(path).read_text())
    for key in keys:
        value = value[key]
    return value


def results_table() -> list[str]:
    train, evaluation = "reports/train.json", "reports/eval.json"
    lines = [
        "| result | value |",
        "|---|---:|",
        f"| validation accuracy / macro-F1 | {metric(train, 'val_accuracy'):.3f} / "
        f"{metric(train, 'val_macro_f1'):.3f} |",
        f"| test accuracy / macro-F1 | {metric(evaluation, 'accuracy'):.3f} / "
        f"{metric(evaluation, 'macro_f1'):.3f} ({metric(evaluation, 'n')} images) |",
    ]
    if Path("reports/export.json").is_file():
        export = json.loads(Path("reports/export.json").read_text())
        sizes = export["size_bytes"]
        lines.append(
            "| model size: checkpoint / ONNX fp32 / int8 | "
            + " / ".join(f"{sizes[k] / 1e6:.1f} MB" for k in ("checkpoint", "fp32", "int8"))
            + " |"
        )
        lines.append(f"| int8 test accuracy change | {export['int8']['accuracy_delta']:+.4f} |")
        for name, r in export["latency"].items():
            if isinstance(r, dict):
                rate = next(v for k, v in r.items() if k.endswith("_images_per_s"))
                lines.append(
                    f"| {name}: batch-1 p50 / p95; batched | {r['batch1_p50_ms']:.2f} / "
                    f"{r['batch1_p95_ms']:.2f} ms; {rate:,.0f} img/s |"
                )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--log", type=Path, help="save the time-stamped output here")
    parser.add_argument("--out", type=Path, help="save the markdown report here")
    args = parser.parse_args()
    log = args.log.open("w") if args.log else None
    starts: list[tuple[str, float]] = []
    t0 = time.time()
    for line in sys.stdin:
        now = time.time()
        stamped = f"{time.strftime('%H:%M:%S', time.localtime(now))} {line}"
        sys.stdout.write(stamped)
        if log:
            log.write(stamped)
            log.flush()
        if match := RUNNING.search(line):
            starts.append((match.group(1), now))
    end = time.time()
    bounds = [t for _, t in starts[1:]] + [end]
    report = [
        f"{platform.node()} ({platform.machine()}), {time.strftime('%Y-%m-%d')}, "
        f"whole run {(end - t0) / 60:.1f} min",
        "",
        "| stage | wall time |",
        "|---|---:|",
        *(
            f"| {name} | {(stop - t) / 60:.1f} min |"
            for (name, t), stop in zip(starts, bounds, strict=True)
        ),
        "",
        *results_table(),
    ]
    text = "\n".join(report) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
