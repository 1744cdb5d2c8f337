"""How separable are the demo classes? Baselines on a generated demo dataset.

Usage: python benchmarks/demo_difficulty.py [--count 3000]
Prints the majority-class rate, a pixel logistic regression and a logistic regression on the
true expression parameters at spreads 1.0 and the configured default (the task's rough ceiling).
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from emotion.demo_data.dataset import META_FILE, generate_dataset
from emotion.demo_data.faces import sample_expression
from emotion.tools.params_file import load_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=3000)
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    d = load_section("demo_data", count=args.count)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        generate_dataset(d, Path(tmp), workers=2)
        meta = pd.read_csv(Path(tmp) / META_FILE)
        pixels = np.stack(
            [np.asarray(Image.open(Path(tmp) / p), np.float32).ravel() / 255 for p in meta["path"]]
        )
    labels = meta["label"].to_numpy()
    rows.append(("majority class", (labels == pd.Series(labels).mode()[0]).mean()))
    acc = cross_val_score(LogisticRegression(max_iter=300, C=0.1), pixels, labels, cv=3).mean()
    rows.append((f"logistic regression, raw {d.image_size}px pixels (3-fold)", acc))
    for spread in sorted({1.0, d.expression_spread}):
        expr = [
            astuple(sample_expression(np.random.default_rng([d.seed, i]), y, spread))
            for i, y in enumerate(labels)
        ]
        acc = cross_val_score(
            LogisticRegression(max_iter=3000), np.array(expr), labels, cv=5
        ).mean()
        rows.append((f"logistic regression, true expression params, spread {spread} (5-fold)", acc))
    print(
        f"demo dataset: {args.count} images, seed {d.seed}, "
        f"expression_spread {d.expression_spread}\n"
    )
    print("| classifier | accuracy |\n|---|---:|")
    for name, acc in rows:
        print(f"| {name} | {acc:.3f} |")


if __name__ == "__main__":
    main()
