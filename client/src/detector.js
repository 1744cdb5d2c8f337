// BlazeFace (the server's model file) through mediapipe Tasks for Web, with the server's policy
// (emotion.serve.faces): the frame is upscaled (Pillow bilinear) so the shorter side is at least
// 128 px and the longer at most 2048 px, boxes are mapped back, overlapping ones merged, the
// largest first; for every face, overlapping tiles of the frame are searched too.

import { resizeRGBA, roundHalfEven } from "./contract.js";

const DETECTOR_SIDE = 128;
const MAX_DETECTOR_SIDE = 2048;
const MIN_TILE = 192;

/**
 * Resize factor before detection: shorter side up to 128 px, longer side at most 2048 px. The
 * server also decodes uploads to at most 2048 px; the browser keeps a larger photo whole (its
 * answer can then differ slightly from the server's), so a factor under 1 is not applied here.
 */
export function detectionScale(width, height) {
  const up = Math.max(1, DETECTOR_SIDE / Math.min(width, height));
  return Math.max(1, Math.min(up, MAX_DETECTOR_SIDE / Math.max(width, height)));
}

/** The size the detector sees a frame at (each side >= 1 px), as the server computes it. */
export function detectionSize(width, height) {
  const scale = detectionScale(width, height);
  return [Math.max(1, roundHalfEven(width * scale)), Math.max(1, roundHalfEven(height * scale))];
}

/** Overlapping square tiles [left, top, right, bottom] (emotion.serve.faces.tiles). */
export function tiles(width, height) {
  const side = Math.min(width, height);
  const boxes = [];
  for (const tile of new Set([side, Math.floor(side / 2)])) {
    if (tile < MIN_TILE || (tile === side && width === height)) continue;
    const step = Math.floor(tile / 2);
    const starts = (extent) => {
      const s = new Set();
      for (let v = 0; v <= extent - tile; v += step) s.add(v);
      s.add(extent - tile);
      return [...s].sort((a, b) => a - b);
    };
    for (const y of starts(height)) for (const x of starts(width)) boxes.push([x, y, x + tile, y + tile]);
  }
  return boxes;
}

function overlap(a, b) {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  return (Math.max(0, w) * Math.max(0, h)) / Math.max(1, Math.min(a.width * a.height, b.width * b.height));
}

/** One box per face, keeping `kept` (emotion.serve.faces.merge). */
export function merge(faces, kept = [], threshold = 0.5) {
  const out = [...kept];
  for (const face of [...faces].sort((a, b) => b.score - a.score)) {
    if (out.every((other) => overlap(face, other) <= threshold)) out.push(face);
  }
  return out;
}

function cropImage(image, [left, top, right, bottom]) {
  const width = right - left;
  const out = new Uint8ClampedArray(width * (bottom - top) * 4);
  for (let y = top; y < bottom; y++) {
    const start = (y * image.width + left) * 4;
    out.set(image.data.subarray(start, start + width * 4), (y - top) * width * 4);
  }
  return new ImageData(out, width, bottom - top);
}

export class FaceLocator {
  static async create(base, minConfidence = 0.5) {
    const { FaceDetector, FilesetResolver } = await import("../vendor/mediapipe/vision_bundle.mjs");
    const fileset = await FilesetResolver.forVisionTasks(`${base}vendor/mediapipe/wasm`);
    const detector = await FaceDetector.createFromOptions(fileset, {
      baseOptions: { modelAssetPath: `${base}model/face_detector.tflite`, delegate: "CPU" },
      runningMode: "IMAGE",
      minDetectionConfidence: minConfidence,
    });
    return new FaceLocator(detector);
  }

  constructor(detector) {
    this.detector = detector;
  }

  /** Faces in an RGBA ImageData, highest score first, boxes clipped to the image. */
  detect(image) {
    const faces = [];
    for (const det of this.detector.detect(image).detections) {
      const box = det.boundingBox;
      const x = Math.max(0, box.originX);
      const y = Math.max(0, box.originY);
      const width = Math.min(box.width, image.width - x);
      const height = Math.min(box.height, image.height - y);
      if (width > 0 && height > 0) faces.push({ x, y, width, height, score: det.categories[0].score });
    }
    return faces.sort((a, b) => b.score - a.score);
  }

  /** Faces in an RGBA ImageData, largest first; `tiled` also searches overlapping tiles. */
  find(image, tiled = false) {
    let faces = merge(this.detectAt(image, 0, 0));
    if (tiled) {
      const found = tiles(image.width, image.height)
        .flatMap((box) => this.detectAt(cropImage(image, box), box[0], box[1]));
      faces = merge(found, faces);
    }
    return faces.sort((a, b) => b.width * b.height - a.width * a.height);
  }

  /** Faces of `image` at the detector's size, mapped back and shifted by (left, top). */
  detectAt(image, left, top) {
    const { width, height } = image;
    const [w, h] = detectionSize(width, height);
    const probe = w === width && h === height
      ? image
      : new ImageData(resizeRGBA(image.data, width, height, w, h, "bilinear"), w, h);
    const sx = width / w;
    const sy = height / h;
    return this.detect(probe).map((f) => ({
      x: roundHalfEven(f.x * sx) + left,
      y: roundHalfEven(f.y * sy) + top,
      width: Math.max(1, roundHalfEven(f.width * sx)),
      height: Math.max(1, roundHalfEven(f.height * sy)),
      score: f.score,
    }));
  }

  close() {
    this.detector.close();
  }
}
