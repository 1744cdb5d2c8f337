// One frame -> emotion probabilities on this device, with the server's rules for which pixels are
// classified (emotion.serve.inference): the largest face grown by the contract's margin; no face
// but a small square image (<= 96 px, sides within 10%): taken to be a face crop already.

import { Classifier } from "./classifier.js";
import { Contract } from "./contract.js";
import { FaceLocator } from "./detector.js";

const SMALL_CROP_MAX_SIDE = 96;

export function isSmallSquare(width, height) {
  const side = Math.max(width, height);
  return side <= SMALL_CROP_MAX_SIDE && Math.abs(width - height) <= Math.floor(side / 10);
}

function cropRGBA(image, left, top, side) {
  const out = new Uint8ClampedArray(side * side * 4);
  for (let y = 0; y < side; y++) {
    const start = ((top + y) * image.width + left) * 4;
    out.set(image.data.subarray(start, start + side * 4), y * side * 4);
  }
  return out;
}

export class Pipeline {
  static async create(base, variant = "fp32") {
    const response = await fetch(`${base}model/model.json`);
    if (!response.ok) throw new Error(`${base}model/model.json: HTTP ${response.status}`);
    const contract = new Contract(await response.json());
    const [faces, classifier] = await Promise.all([
      FaceLocator.create(base),
      Classifier.create(base, contract, variant),
    ]);
    return new Pipeline(contract, faces, classifier);
  }

  constructor(contract, faces, classifier) {
    this.contract = contract;
    this.faces = faces;
    this.classifier = classifier;
  }

  /**
   * An RGBA ImageData -> the same fields as POST /predict (plus timings in ms), or
   * `{ error }` when no face is found and the image is not a small square crop.
   */
  async analyze(image) {
    const t0 = performance.now();
    const face = this.faces.largest(image);
    const t1 = performance.now();
    let region = image.data;
    let width = image.width;
    let height = image.height;
    let note = null;
    if (face) {
      const box = this.contract.cropBox(face, image.width, image.height);
      region = cropRGBA(image, box.left, box.top, box.side);
      width = height = box.side;
    } else if (isSmallSquare(image.width, image.height)) {
      note = `no face detected; a square image of at most ${SMALL_CROP_MAX_SIDE} px is taken to be a face crop already`;
    } else {
      return { error: "no face found; face the camera, or choose a closer, well-lit photo of one face" };
    }
    const inputs = this.contract.inputs(this.contract.sourceGray(region, width, height));
    const probs = this.contract.probabilities(await this.classifier.logits(inputs));
    const t2 = performance.now();
    const predictions = Object.fromEntries(this.contract.classes.map((c, i) => [c, probs[i]]));
    const top = this.contract.classes[probs.indexOf(Math.max(...probs))];
    return {
      predictions,
      predicted_class: top,
      confidence: predictions[top],
      face_detected: face !== null,
      face_box: face && { ...face, score: Math.round(face.score * 1e4) / 1e4 },
      note,
      timings: { detect_ms: t1 - t0, classify_ms: t2 - t1 },
    };
  }
}
