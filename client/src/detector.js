// BlazeFace (the server's model file) through mediapipe Tasks for Web, with the server's policy
// (emotion.serve.faces): small images are upscaled (Pillow bilinear) so the shorter side is
// 128 px (longer side at most 1024 px), the largest face wins, its box is mapped back.

import { resizeRGBA, roundHalfEven } from "./contract.js";

const DETECTOR_SIDE = 128;
const MAX_UPSCALED_SIDE = 1024;

export function detectionScale(width, height) {
  const scale = Math.min(DETECTOR_SIDE / Math.min(width, height), MAX_UPSCALED_SIDE / Math.max(width, height));
  return Math.max(1, scale);
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

  /** The largest face in an RGBA ImageData (pixel box in it), or null. */
  largest(image) {
    const { width, height } = image;
    const scale = detectionScale(width, height);
    let probe = image;
    if (scale > 1) {
      const w = roundHalfEven(width * scale);
      const h = roundHalfEven(height * scale);
      probe = new ImageData(resizeRGBA(image.data, width, height, w, h, "bilinear"), w, h);
    }
    const faces = this.detect(probe);
    if (faces.length === 0) return null;
    const face = faces.reduce((best, f) => (f.width * f.height > best.width * best.height ? f : best));
    if (scale === 1) return face;
    const x = roundHalfEven(face.x / scale);
    const y = roundHalfEven(face.y / scale);
    return {
      x,
      y,
      width: Math.min(roundHalfEven(face.width / scale), width - x),
      height: Math.min(roundHalfEven(face.height / scale), height - y),
      score: face.score,
    };
  }

  close() {
    this.detector.close();
  }
}
