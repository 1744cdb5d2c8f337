"""Throughput of ``emotion predict`` on a folder of photos and on a video, with a same-run baseline.

Writes ``--images`` JPEG photos (scikit-image's astronaut, shifted, mirrored and rescaled between
320 and 1024 px, so the detector and the crop do real work) into a temp folder and a video of
``--video-seconds`` at 25 frames/s (the photo drifting, 640x480, MJPG), then times the whole
command (start-up included, as a user sees it) for the folder, for the video at ``--fps`` sampled
frames/s and at every frame, and, as the baseline, the same Predictor called in-process on the
same photos (no start-up, no output), for the largest face (as ``/predict`` does by default) and
for every face (as ``emotion predict`` does: the detector also searches tiles). Reports images or
frames per second and the ratios.

Usage (repo root): python -m benchmarks.bench_predict [--model-dir release/fer2013-v1]
       [--images 200] [--video-seconds 20] [--fps 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage import data as skdata

from benchmarks import emit
from emotion.serve.inference import Predictor
from emotion.serve.settings import RELEASED_MODEL, ServeSettings


def write_photos(folder: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(0)
    photo = Image.fromarray(skdata.astronaut())
    paths = []
    for i in range(count):
        side = int(rng.integers(320, 1025))
        image = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if i % 2 else photo
        image = image.rotate(0, translate=tuple(rng.integers(-40, 41, 2)), fillcolor="white")
        path = folder / f"{i:04d}.jpg"
        image.resize((side, side)).save(path, quality=90)
        paths.append(path)
    return paths


def write_video(path: Path, seconds: float) -> int:
    photo = np.asarray(Image.fromarray(skdata.astronaut()).resize((480, 480)))[:, :, ::-1]
    frame = np.full((480, 640, 3), 255, np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (640, 480))
    frames = int(seconds * 25)
    for i in range(frames):
        left = int(80 + 60 * np.sin(i / 25))
        frame[:] = 255
        frame[:, left : left + 480] = photo
        writer.write(frame)
    writer.release()
    return frames


def timed_command(args: list[str]) -> float:
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "emotion.tools.cli", "predict", *args]
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=RELEASED_MODEL)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--video-seconds", type=float, default=20.0)
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    model = ["--model-dir", str(args.model_dir)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        photos = write_photos(folder, args.images)
        video = Path(tmp) / "clip.avi"
        frames = write_video(video, args.video_seconds)
        rates = {}
        with Predictor.from_settings(ServeSettings(model_dir=args.model_dir)) as predictor:
            predictor.predict_bytes(photos[0].read_bytes())
            for faces in (1, ServeSettings.max_faces):  # the largest face; every face (tiles)
                start = time.perf_counter()
                for path in photos:
                    predictor.predict_bytes(path.read_bytes(), max_faces=faces)
                rates[faces] = len(photos) / (time.perf_counter() - start)
        in_process = rates[ServeSettings.max_faces]
        folder_s = timed_command([str(folder), *model, "--out", str(Path(tmp) / "f.jsonl")])
        sampled = int(args.video_seconds * args.fps)
        video_s = timed_command([str(video), *model, "--fps", str(args.fps)])
        every_s = timed_command([str(video), *model, "--fps", "25"])
    result = {
        "photos": len(photos),
        "in_process_largest_face_photos_per_s": round(rates[1], 1),
        "in_process_every_face_photos_per_s": round(in_process, 1),
        "folder_photos_per_s": round(len(photos) / folder_s, 1),
        "folder_over_in_process": round(len(photos) / folder_s / in_process, 2),
        "video_frames": frames,
        f"video_{args.fps:g}fps_sampled_frames_per_s": round(sampled / video_s, 1),
        f"video_{args.fps:g}fps_video_seconds_per_s": round(args.video_seconds / video_s, 2),
        "video_every_frame_frames_per_s": round(frames / every_s, 1),
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
