// The exported model's contract (models/model.json), applied in the browser exactly as the server
// applies it (emotion.core.preprocessing, emotion.serve.faces): face crop + margin, grayscale,
// Lanczos to the stored size, test-time views, bilinear (antialiased) to the model size on
// [0, 1] floats, normalisation, channel copies. Arithmetic follows numpy/Pillow step by step.

import { resize } from "./resample.js";

const FIXED = {
  grayscale: true,
  face_crop: true,
  source_resample: "lanczos",
  resample: "bilinear-antialias",
};
const FORMAT = "emotion-onnx";
const FORMAT_VERSION = 3;
const AGGREGATE = "mean_probability";

/** Python's round(): half to even. */
export function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** RGBA bytes -> Pillow's "L" (ITU-R 601-2 luma, its fixed-point formula). */
export function grayFromRGBA(rgba) {
  const gray = new Uint8Array(rgba.length / 4);
  for (let i = 0, j = 0; j < gray.length; i += 4, j++) {
    gray[j] = (rgba[i] * 19595 + rgba[i + 1] * 38470 + rgba[i + 2] * 7471 + 0x8000) >>> 16;
  }
  return gray;
}

/** One channel of interleaved RGBA bytes resized with Pillow's filter, written back. */
export function resizeRGBA(rgba, width, height, outWidth, outHeight, filter) {
  const out = new Uint8ClampedArray(outWidth * outHeight * 4).fill(255);
  for (let c = 0; c < 3; c++) {
    const channel = new Uint8Array(width * height);
    for (let j = 0; j < channel.length; j++) channel[j] = rgba[j * 4 + c];
    const resized = resize(channel, width, height, outWidth, outHeight, filter);
    for (let j = 0; j < resized.length; j++) out[j * 4 + c] = resized[j];
  }
  return out;
}

export class Contract {
  /** Parse model.json; refuse what this client does not implement (as the server does). */
  constructor(json, origin = "model.json") {
    if (json.format !== FORMAT || json.format_version !== FORMAT_VERSION) {
      throw new Error(`${origin}: format ${json.format} v${json.format_version}, expected ${FORMAT} v${FORMAT_VERSION}; update the client or re-export`);
    }
    const prep = json.preprocessing;
    for (const [key, value] of Object.entries(FIXED)) {
      if (prep[key] !== value) throw new Error(`${origin}: preprocessing.${key} is ${prep[key]}, this client applies ${value}`);
    }
    if (json.tta.aggregate !== AGGREGATE) throw new Error(`${origin}: tta.aggregate ${json.tta.aggregate} is not ${AGGREGATE}`);
    if (json.input.layout !== "NCHW" || json.input.dtype !== "float32") throw new Error(`${origin}: input must be float32 NCHW`);
    this.json = json;
    this.classes = json.classes;
    this.prep = prep;
    this.tta = json.tta;
    this.temperature = json.output.temperature;
    this.inputName = json.input.name;
    this.outputName = json.output.name;
    this.scale = Math.fround(prep.scale);
    this.mean = prep.mean.map(Math.fround);
    this.std = prep.std.map(Math.fround);
  }

  get views() {
    return this.tta.views;
  }

  /** Square crop box around a face grown by the margin, slid inside the image (Face.crop_box). */
  cropBox(face, width, height) {
    let side = roundHalfEven(Math.max(face.width, face.height) * (1 + 2 * this.prep.face_margin));
    side = Math.max(1, Math.min(side, width, height));
    const cx = face.x + face.width / 2;
    const cy = face.y + face.height / 2;
    const left = Math.min(Math.max(0, roundHalfEven(cx - side / 2)), width - side);
    const top = Math.min(Math.max(0, roundHalfEven(cy - side / 2)), height - side);
    return { left, top, side };
  }

  /** RGBA region -> uint8 grayscale at source_size (square_gray). */
  sourceGray(rgba, width, height) {
    const s = this.prep.source_size;
    return resize(grayFromRGBA(rgba), width, height, s, s, "lanczos");
  }

  /** (top, left, side) of each crop before mirroring, in view order (TestTimeAugmentation.boxes). */
  boxes() {
    const s = this.prep.source_size;
    if (this.tta.mode !== "ten_crop") return [[0, 0, s]];
    const side = Math.max(1, roundHalfEven(this.tta.crop * s));
    const far = s - side;
    const mid = Math.floor(far / 2);
    return [[0, 0, side], [0, far, side], [far, 0, side], [far, far, side], [mid, mid, side]];
  }

  /** uint8 source_size^2 grayscale -> float32 (views, in_chans, size, size) model input. */
  inputs(gray) {
    const s = this.prep.source_size;
    const size = this.prep.image_size;
    const chans = this.prep.in_chans;
    const plane = size * size;
    const out = new Float32Array(this.views * chans * plane);
    let view = 0;
    for (const [top, left, side] of this.boxes()) {
      for (const mirror of this.tta.mode === "none" ? [false] : [false, true]) {
        const crop = new Float32Array(side * side);
        for (let y = 0; y < side; y++) {
          for (let x = 0; x < side; x++) {
            const sx = mirror ? left + side - 1 - x : left + x;
            crop[y * side + x] = Math.fround(gray[(top + y) * s + sx] * this.scale);
          }
        }
        const pixels = side === size ? crop : resize(crop, side, side, size, size, "bilinear");
        for (let c = 0; c < chans; c++) {
          const base = (view * chans + c) * plane;
          for (let i = 0; i < plane; i++) {
            out[base + i] = Math.fround(Math.fround(pixels[i] - this.mean[c]) / this.std[c]);
          }
        }
        view += 1;
      }
    }
    return out;
  }

  /** (views x classes) logits -> calibrated probabilities: softmax(z / T) per view, then mean. */
  probabilities(logits) {
    const k = this.classes.length;
    const t = Math.fround(this.temperature); // numpy: float32 logits / a Python float stay float32
    const sum = new Float64Array(k);
    for (let v = 0; v < this.views; v++) {
      const z = Array.from(logits.subarray(v * k, (v + 1) * k), (l) => Math.fround(l / t));
      const top = Math.max(...z);
      const e = z.map((l) => Math.exp(l - top));
      const total = e.reduce((a, b) => a + b, 0);
      e.forEach((value, i) => { sum[i] += value / total; });
    }
    return Array.from(sum, (value) => value / this.views);
  }
}
