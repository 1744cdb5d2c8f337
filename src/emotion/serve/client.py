"""The on-device client's files by URL path: served under ``/app/`` or written as a static bundle.

The page and its modules come from ``client/``; onnxruntime-web and mediapipe Tasks for Web from
``client/node_modules`` (pinned in ``client/package-lock.json``, installed by ``make setup``);
the model files named in ``model.json`` from the model directory; BlazeFace from the server's
face model. ``precache.json`` lists them all for the service worker, versioned by their hashes,
so an installed client opens offline and updates when any file (the model included) changes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from functools import cached_property
from importlib.resources import files as package_files
from pathlib import Path
from typing import Any

from emotion.core.atomic import write_text
from emotion.core.errors import DataError
from emotion.core.hashing import sha256_file
from emotion.export.contract import CONTRACT_FILE, ModelContract

PAGE_FILES = ("index.html", "style.css", "manifest.webmanifest", "sw.js", "icon.svg")
VENDOR_FILES = {
    "vendor/ort/ort.wasm.min.mjs": "onnxruntime-web/dist/ort.wasm.min.mjs",
    "vendor/ort/ort-wasm-simd-threaded.mjs": "onnxruntime-web/dist/ort-wasm-simd-threaded.mjs",
    "vendor/ort/ort-wasm-simd-threaded.wasm": "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm",
    "vendor/mediapipe/vision_bundle.mjs": "@mediapipe/tasks-vision/vision_bundle.mjs",
    **{
        f"vendor/mediapipe/wasm/{name}": f"@mediapipe/tasks-vision/wasm/{name}"
        for name in (
            "vision_wasm_internal.js",
            "vision_wasm_internal.wasm",
            "vision_wasm_nosimd_internal.js",
            "vision_wasm_nosimd_internal.wasm",
        )
    },
}
FACE_MODEL_PATH = "model/face_detector.tflite"
PRECACHE = "precache.json"
#: Cross-origin isolation: onnxruntime-web then runs its WebAssembly kernels on several threads.
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
}


@dataclass(frozen=True)
class ClientFiles:
    """URL path (relative to the client's root) -> file on disk."""

    files: dict[str, Path]

    @classmethod
    def collect(cls, client_dir: Path, model_dir: Path, face_model: Path) -> ClientFiles:
        """Every file the client needs; a ``DataError`` names what is missing and what to do."""
        files = {name: client_dir / name for name in PAGE_FILES}
        static = Path(str(package_files("emotion.serve") / "static"))
        files["base.css"] = static / "style.css"  # shared with the server page
        files["src/saliency.js"] = static / "saliency.js"
        files |= {f"src/{p.name}": p for p in sorted((client_dir / "src").glob("*.js"))}
        files |= {url: client_dir / "node_modules" / path for url, path in VENDOR_FILES.items()}
        contract = ModelContract.load(model_dir / CONTRACT_FILE)
        files[f"model/{CONTRACT_FILE}"] = model_dir / CONTRACT_FILE
        files |= {f"model/{e['path']}": model_dir / e["path"] for e in contract.files.values()}
        files[FACE_MODEL_PATH] = face_model
        missing = [str(path) for path in files.values() if not path.is_file()]
        if missing:
            raise DataError(
                f"on-device client: {len(missing)} file(s) missing, first {missing[0]}; run"
                " `make setup` (npm packages: `npm ci --prefix client`), `dvc repro export`"
                " (model) and `dvc repro assets` (face detector)"
            )
        return cls(files)

    @cached_property
    def precache(self) -> dict[str, Any]:
        """The service worker's list: every file plus the page's own URL, and a version (the
        files' hashes, computed on first use)."""
        digest = hashlib.sha256()
        for url in sorted(self.files):
            digest.update(f"{url}\0{sha256_file(self.files[url])}\n".encode())
        return {"version": digest.hexdigest()[:16], "files": ["./", *sorted(self.files)]}

    def bundle(self, out: Path) -> int:
        """Copy the client into ``out`` for any static web server; returns the file count."""
        for url, path in self.files.items():
            target = out / url
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        write_text(out / PRECACHE, json.dumps(self.precache, indent=2) + "\n")
        return len(self.files) + 1
