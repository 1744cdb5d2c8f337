// One frame -> emotion probabilities on this device, with the server's rules for which pixels are
// classified (emotion.serve.inference): the largest face (or every face, up to a limit) grown by
// the contract's margin; no face but a small square image (<= 96 px, sides within 10%): taken to
// be a face crop already.

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
   * `{ error }` when no face is found and the image is not a small square crop. With
   * `maxFaces` > 1 (POST /predict?all_faces=true) also `faces`: every face, largest first.
   */
  async analyze(image, maxFaces = 1) {
    const t0 = performance.now();
    const found = this.faces.find(image, maxFaces > 1).slice(0, maxFaces);
    const t1 = performance.now();
    let regions;
    if (found.length) {
      regions = found.map((face) => {
        const box = this.contract.cropBox(face, image.width, image.height);
        return { face, note: null, rgba: cropRGBA(image, box.left, box.top, box.side), side: box.side };
      });
    } else if (isSmallSquare(image.width, image.height)) {
      const note = `no face detected; a square image of at most ${SMALL_CROP_MAX_SIDE} px is taken to be a face crop already`;
      regions = [{ face: null, note, rgba: image.data, width: image.width, height: image.height }];
    } else {
      return { error: "no face found; face the camera, or choose a closer, well-lit photo of one face" };
    }
    const faces = [];
    for (const r of regions) {
      const gray = this.contract.sourceGray(r.rgba, r.side ?? r.width, r.side ?? r.height);
      const probs = this.contract.probabilities(await this.classifier.logits(this.contract.inputs(gray)));
      const predictions = Object.fromEntries(this.contract.classes.map((c, k) => [c, probs[k]]));
      const top = this.contract.classes[probs.indexOf(Math.max(...probs))];
      faces.push({
        predictions,
        predicted_class: top,
        confidence: predictions[top],
        face_box: r.face && { ...r.face, score: Math.round(r.face.score * 1e4) / 1e4 },
        note: r.note,
      });
    }
    const t2 = performance.now();
    return {
      ...faces[0],
      face_detected: found.length > 0,
      faces: maxFaces > 1 ? faces : null,
      timings: { detect_ms: t1 - t0, classify_ms: t2 - t1 },
    };
  }
}
