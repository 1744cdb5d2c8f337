"""DVC stage ``demo_data``: write the procedural demo face dataset (images + expression masks)."""

from __future__ import annotations

import argparse

from emotion.config import load_sections
from emotion.demo.dataset import DemoSpec, generate_dataset
from emotion.demo.faces import NuisanceRanges
from emotion.params.demo_data import DemoDataParams
from emotion.stage import log, run_stage, worker_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="output folder (replaced atomically)")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()

    p = load_sections(args.params, demo_data=DemoDataParams).demo_data
    spec = DemoSpec(
        seed=p.seed,
        count=p.count,
        image_size=p.image_size,
        class_proportions=p.class_proportions,
        jpeg_fraction=p.jpeg_fraction,
        jpeg_quality=p.jpeg_quality,
        expression_spread=p.expression_spread,
        nuisance=NuisanceRanges(
            max_rotation_deg=p.max_rotation_deg,
            max_shift=p.max_shift,
            scale_range=tuple(p.scale_range),
            noise_std_max=p.noise_std_max,
            blur_max=p.blur_max,
            occlusion_prob=p.occlusion_prob,
        ),
    )
    counts = generate_dataset(spec, args.out, workers=worker_count())
    log.info("wrote %d demo faces to %s: %s", sum(counts.values()), args.out, counts)


if __name__ == "__main__":
    run_stage(main)
