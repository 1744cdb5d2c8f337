// The server's saliency map (POST /predict?explain=true), drawn where the model looked.
// `saliency.box` is the region of the photo the model saw (the detected face grown by the model's
// margin into a square), resized to `size` x `size` px; the map is constant over `grid` x `grid`
// cells of `cell` px, so it is drawn cell by cell: over that square on the photo (outlined,
// dashed) and enlarged beside it, with its colour scale and its real resolution.
// Shared by the server page (/) and the on-device client (/app/).

/** The colour scale, low -> high: [position, r, g, b, alpha] (inferno; fainter when low). */
const STOPS = [
  [0, 0, 0, 4, 0.2],
  [0.25, 87, 16, 110, 0.35],
  [0.5, 188, 55, 84, 0.5],
  [0.75, 249, 142, 9, 0.65],
  [1, 252, 255, 164, 0.8],
];
const ZOOM = 288; // CSS px of the enlarged view
/** The scale's top is the largest drop, but at least this much: a map whose largest drop is
 *  tiny stays faint instead of being stretched to look decisive. */
const MIN_TOP = 0.05;
const METHODS = { occlusion: "Occlusion sensitivity" };

/** rgba of a value in [0, 1] on the scale. */
export function colour(v) {
  const i = Math.max(1, STOPS.findIndex(([at]) => at >= v));
  const [a, b] = [STOPS[i - 1], STOPS[i]];
  const t = (v - a[0]) / (b[0] - a[0]);
  return a.slice(1).map((x, k) => x + t * (b[k + 1] - x));
}

const css = ([r, g, b, alpha]) => `rgba(${r.toFixed(0)}, ${g.toFixed(0)}, ${b.toFixed(0)}, ${alpha.toFixed(2)})`;
const SCALE = `linear-gradient(to right, ${STOPS.map(([at, ...c]) => `${css(c)} ${100 * at}%`).join(", ")})`;

/** The probability drop per cell, row by row, from the server's size x size PNG. */
async function cellDrops(saliency) {
  const image = new Image();
  image.src = `data:image/png;base64,${saliency.png}`;
  await image.decode();
  const canvas = new OffscreenCanvas(image.width, image.height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, image.width, image.height).data;
  const { grid, cell } = saliency;
  const values = new Float32Array(grid * grid);
  const mid = Math.floor(cell / 2); // every pixel of a cell has the cell's value
  for (let row = 0; row < grid; row++) {
    for (let col = 0; col < grid; col++) {
      const value = pixels[4 * ((row * cell + mid) * image.width + col * cell + mid)];
      values[row * grid + col] = (value / 255) * saliency.max_probability_drop;
    }
  }
  return values;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

export class SaliencyView {
  /** `photo`: the canvas showing the analysed image; `panel`: an empty element for the enlarged
   *  map, its colour scale and the notes. */
  constructor(photo, panel) {
    this.photo = photo;
    if (!photo.parentElement.classList.contains("stage")) {
      const stage = element("div", "stage");
      photo.replaceWith(stage);
      stage.append(photo);
    }
    this.overlay = element("canvas", "saliency-overlay");
    this.overlay.id = `${photo.id}-saliency`;
    this.overlay.setAttribute("aria-hidden", "true");
    this.overlay.hidden = true;
    photo.parentElement.append(this.overlay);
    this.panel = panel;
    panel.hidden = true;
    panel.classList.add("saliency");
    this.zoom = element("canvas", "saliency-zoom");
    this.zoom.id = "saliency-zoom";
    this.zoom.setAttribute("role", "img");
    this.low = element("span", "scale-label", "no change");
    this.high = element("span", "scale-label");
    const bar = element("span", "scale-bar");
    bar.style.background = `${SCALE}, #808080`; // over mid-grey, as over a face
    const legend = element("div", "saliency-legend");
    legend.id = "saliency-legend";
    legend.append(this.low, bar, this.high);
    this.meaning = element("p", "saliency-meaning");
    this.resolution = element("p", "saliency-resolution");
    this.resolution.id = "saliency-resolution";
    const heading = element("h3", "", "Where the prediction comes from");
    heading.id = "saliency-heading";
    panel.setAttribute("aria-labelledby", heading.id);
    panel.replaceChildren(heading, this.zoom, legend, this.meaning, this.resolution);
  }

  clear() {
    this.overlay.hidden = true;
    this.panel.hidden = true;
    delete this.photo.dataset.saliency;
    delete this.overlay.dataset.box;
  }

  /** Draw `saliency` for the class `label`; `source` holds the analysed image's pixels. */
  async show(saliency, label, source) {
    const { grid, size, box } = saliency;
    const drops = await cellDrops(saliency);
    const top = Math.max(saliency.max_probability_drop, MIN_TOP);
    const heat = new OffscreenCanvas(grid, grid);
    const hctx = heat.getContext("2d");
    const pixels = hctx.createImageData(grid, grid);
    drops.forEach((drop, i) => {
      const [r, g, b, alpha] = colour(drop / top);
      pixels.data.set([r, g, b, Math.round(255 * alpha)], 4 * i);
    });
    hctx.putImageData(pixels, 0, 0);
    this.drawOverlay(heat, box);
    this.outline(box);
    this.drawZoom(heat, grid, box, source);
    const points = (p) => `${(100 * p).toFixed(1)} points`;
    this.high.textContent = `−${points(top)}`;
    this.meaning.textContent =
      `Colour: how much the probability of “${label}” drops when that part of the face is ` +
      `hidden under a grey patch (faint: no change, bright: a drop of ${points(top)}). The ` +
      "dashed square on the photo is what the model saw: the face box grown by the model's margin.";
    if (saliency.max_probability_drop < MIN_TOP) {
      this.meaning.textContent += ` Hiding any one part changes this prediction by at most ` +
        `${points(saliency.max_probability_drop)}: no single region decides it.`;
    }
    const method = METHODS[saliency.method] ?? saliency.method;
    this.resolution.textContent =
      `${method} at ${grid}×${grid} cells of the ${size}×${size} face crop: ` +
      "it shows which region, not which pixel.";
    this.zoom.setAttribute("aria-label", `${method} map of the face, ${grid}×${grid} cells`);
    this.photo.dataset.saliency = `${saliency.method} ${grid}x${grid} of ${size}px`;
    this.panel.hidden = false;
  }

  /** The cells over the photo, in percent of its size so they follow its displayed size. */
  drawOverlay(heat, box) {
    const { overlay, photo } = this;
    overlay.width = heat.width;
    overlay.height = heat.height;
    overlay.getContext("2d").drawImage(heat, 0, 0);
    Object.assign(overlay.style, {
      left: `${(100 * box.x) / photo.width}%`,
      top: `${(100 * box.y) / photo.height}%`,
      width: `${(100 * box.width) / photo.width}%`,
      height: `${(100 * box.height) / photo.height}%`,
    });
    overlay.dataset.box = JSON.stringify(box);
    overlay.hidden = false;
  }

  /** The square the model saw, dashed, on the photo's pixels. */
  outline(box) {
    const ctx = this.photo.getContext("2d");
    ctx.save();
    ctx.lineWidth = Math.max(2, Math.round(Math.min(this.photo.width, this.photo.height) / 150));
    ctx.setLineDash([3 * ctx.lineWidth, 2 * ctx.lineWidth]);
    ctx.strokeStyle = "#ffffff";
    ctx.strokeRect(box.x, box.y, box.width, box.height);
    ctx.restore();
  }

  /** The face crop enlarged, with the cells and their edges over it. */
  drawZoom(heat, grid, box, source) {
    const scale = window.devicePixelRatio || 1;
    const side = Math.round(ZOOM * scale);
    const height = Math.round((side * box.height) / box.width);
    Object.assign(this.zoom, { width: side, height });
    this.zoom.style.width = `${ZOOM}px`;
    const ctx = this.zoom.getContext("2d");
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(source, box.x, box.y, box.width, box.height, 0, 0, side, height);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(heat, 0, 0, side, height);
    ctx.strokeStyle = "rgba(255, 255, 255, 0.3)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let k = 1; k < grid; k++) {
      const x = Math.round((k * side) / grid) + 0.5;
      const y = Math.round((k * height) / grid) + 0.5;
      ctx.moveTo(x, 0);
      ctx.lineTo(x, height);
      ctx.moveTo(0, y);
      ctx.lineTo(side, y);
    }
    ctx.stroke();
  }
}
