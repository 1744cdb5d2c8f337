// Pillow's separable resampling (libImaging/Resample.c), so that the browser computes the same
// pixels as the server and the training data: 8-bit images use Pillow's 22-bit fixed-point
// coefficients and rounding, float images its double-precision sums stored as float32.
// Box = the whole image. Pass order (it changes the rounding of 8-bit images) as Pillow 13 runs
// it, measured shape by shape: horizontal first, except vertical first when the width grows and
// the height shrinks. Shrinking both axes by different factors, where Pillow's choice was not
// pinned down, is refused rather than approximated; the client never needs it (face crops are
// square). No npm package reproduces Pillow's arithmetic exactly.

const PRECISION_BITS = 22;
const HALF = 2 ** (PRECISION_BITS - 1);
const ONE = 2 ** PRECISION_BITS;

function sinc(x) {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

/** Pillow's filters by the names the preprocessing contract uses. */
export const FILTERS = {
  bilinear: { support: 1, weight: (x) => (Math.abs(x) < 1 ? 1 - Math.abs(x) : 0) },
  lanczos: { support: 3, weight: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

/** Per output pixel: first input index, tap count and normalised weights (precompute_coeffs). */
export function coefficients(inSize, outSize, filter) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Float64Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const taps = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    const ss = 1 / filterScale;
    let total = 0;
    for (let x = 0; x < taps; x++) {
      const w = filter.weight((x + xmin - center + 0.5) * ss);
      weights[xx * ksize + x] = w;
      total += w;
    }
    if (total !== 0) for (let x = 0; x < taps; x++) weights[xx * ksize + x] /= total;
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = taps;
  }
  return { ksize, bounds, weights };
}

function fixedPoint(weights) {
  // normalize_coeffs_8bpc: C's (int) cast truncates towards zero
  return Float64Array.from(weights, (w) => Math.trunc(w < 0 ? -0.5 + w * ONE : 0.5 + w * ONE));
}

function clip8(sum) {
  if (sum >= ONE * 256) return 255;
  if (sum <= 0) return 0;
  return Math.floor(sum / ONE);
}

function pass(src, srcWidth, rows, cols, coef, horizontal, eightBit, firstRow) {
  const out = eightBit ? new Uint8Array(rows * cols) : new Float32Array(rows * cols);
  const k = eightBit ? fixedPoint(coef.weights) : coef.weights;
  for (let yy = 0; yy < rows; yy++) {
    for (let xx = 0; xx < cols; xx++) {
      const i = horizontal ? xx : yy;
      const start = coef.bounds[i * 2] - (horizontal ? 0 : firstRow);
      const taps = coef.bounds[i * 2 + 1];
      const base = i * coef.ksize;
      let sum = eightBit ? HALF : 0;
      for (let t = 0; t < taps; t++) {
        const value = horizontal
          ? src[(yy + firstRow) * srcWidth + start + t]
          : src[(start + t) * srcWidth + xx];
        sum += value * k[base + t];
      }
      out[yy * cols + xx] = eightBit ? clip8(sum) : sum;
    }
  }
  return out;
}

/**
 * Resize a single-channel image (Uint8Array: Pillow mode "L"; Float32Array: mode "F") of
 * width x height to outWidth x outHeight with `filter` ("lanczos" or "bilinear").
 */
export function resize(src, width, height, outWidth, outHeight, filterName) {
  const filter = FILTERS[filterName];
  if (!filter) throw new Error(`unknown resampling filter ${filterName}`);
  const eightBit = src instanceof Uint8Array;
  if (width === outWidth && height === outHeight) return src.slice();
  const square = width === height && outWidth === outHeight;
  if (!square && outWidth < width && outHeight < height) {
    throw new Error(`resize ${width}x${height} -> ${outWidth}x${outHeight}: shrinking both sides unevenly is not supported`);
  }
  const horizontal = coefficients(width, outWidth, filter);
  const vertical = coefficients(height, outHeight, filter);
  if (outWidth > width && outHeight < height) {
    const tall = pass(src, width, outHeight, width, vertical, false, eightBit, 0);
    return pass(tall, width, outHeight, outWidth, horizontal, true, eightBit, 0);
  }
  let image = src;
  let imageWidth = width;
  let firstRow = 0;
  if (outWidth !== width) {
    firstRow = vertical.bounds[0];
    const lastRow = vertical.bounds[outHeight * 2 - 2] + vertical.bounds[outHeight * 2 - 1];
    image = pass(src, width, lastRow - firstRow, outWidth, horizontal, true, eightBit, firstRow);
    imageWidth = outWidth;
  }
  if (outHeight === height) return image;
  return pass(image, imageWidth, outHeight, outWidth, vertical, false, eightBit, firstRow);
}
