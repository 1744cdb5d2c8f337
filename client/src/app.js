// The on-device client's page: camera frames or a chosen photo -> faces and emotion probabilities,
// computed in this browser (Pipeline) or by the server (POST /predict), with the frame rate, a
// smoothed display for the camera and the server's saliency map on request.
// `window.emotion` exposes the pipeline and the last frame for scripted checks.

import { Pipeline } from "./pipeline.js";
import { SaliencyView } from "./saliency.js";

const $ = (id) => document.getElementById(id);
const ui = {
  camera: $("camera"), file: $("file"), explain: $("explain"), status: $("status"),
  error: $("error"), video: $("video"), view: $("view"), rate: $("rate"),
  faceInfo: $("face-info"), predicted: $("predicted"), bars: $("bars"), modelInfo: $("model-info"),
  allFaces: $("all-faces"),
};
const saliency = new SaliencyView(ui.view, $("saliency"));
const MAX_FACES = 10; // as emotion serve's --max-faces default: every face, up to this many
const BASE = new URL("./", document.baseURI).href;
const API = new URL("../", BASE).href; // emotion serve: the client lives at /app/
const VARIANT = new URLSearchParams(location.search).get("variant") ?? "fp32"; // ?variant=int8
const SMOOTHING = 0.35; // weight of the newest camera frame in the displayed probabilities
const RATE_WINDOW_MS = 2000;
const frame = document.createElement("canvas"); // the pixels analysed, never scaled
const frameContext = frame.getContext("2d", { willReadFrequently: true });
const percent = (p) => `${(100 * p).toFixed(1)}%`;

const state = {
  pipeline: null, engine: "device", stream: null, smoothed: null, done: [],
  last: null, // { image: ImageData, result }
};
window.emotion = {
  ready: null,
  state,
  analyze: (image) => analyze(image),
  /** The last analysed frame as PNG (base64) with its result. */
  snapshot: async () => state.last && { png: await pngBase64(state.last.image), result: state.last.result },
  rate: () => frameRate(),
};

function showError(message) {
  ui.error.textContent = message ?? "";
  ui.error.hidden = !message;
}

async function pngBase64(image) {
  const canvas = new OffscreenCanvas(image.width, image.height);
  canvas.getContext("2d").putImageData(image, 0, 0);
  const bytes = new Uint8Array(await (await canvas.convertToBlob({ type: "image/png" })).arrayBuffer());
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

async function serverPredict(image) {
  const body = new FormData();
  const canvas = new OffscreenCanvas(image.width, image.height);
  canvas.getContext("2d").putImageData(image, 0, 0);
  body.append("file", await canvas.convertToBlob({ type: "image/png" }), "frame.png");
  const query = new URLSearchParams();
  if (ui.explain.checked) query.set("explain", "true");
  if (ui.allFaces.checked) query.set("all_faces", "true");
  let response;
  try {
    response = await fetch(`${API}predict?${query}`, { method: "POST", body });
  } catch (err) {
    const why = ui.explain.checked ? "explanations come from the server" : "you chose the server";
    return { error: `the server at ${API} did not answer (${err.message}); ${why}: start it, or run on this device without Explain` };
  }
  const json = await response.json().catch(() => ({}));
  return response.ok ? json : { error: json.detail ?? `the server answered HTTP ${response.status}` };
}

async function analyze(image) {
  if (state.engine === "server" || ui.explain.checked) return serverPredict(image);
  return state.pipeline.analyze(image, ui.allFaces.checked ? MAX_FACES : 1);
}

function frameRate() {
  const now = performance.now();
  state.done = state.done.filter((t) => now - t <= RATE_WINDOW_MS);
  if (state.done.length < 2) return 0;
  return (1000 * (state.done.length - 1)) / (state.done.at(-1) - state.done[0]);
}

async function draw(image, result) {
  ui.view.width = image.width;
  ui.view.height = image.height;
  const ctx = ui.view.getContext("2d");
  ctx.putImageData(image, 0, 0);
  const box = result.face_box;
  delete ui.view.dataset.faceBox;
  saliency.clear();
  ctx.lineWidth = Math.max(2, Math.round(Math.min(image.width, image.height) / 150));
  ctx.font = `${Math.max(12, 6 * ctx.lineWidth)}px system-ui, sans-serif`;
  for (const face of (result.faces ?? []).slice(1)) { // the other faces, each with its class
    if (!face.face_box) continue;
    const b = face.face_box;
    ctx.strokeStyle = "#ffd166";
    ctx.strokeRect(b.x, b.y, b.width, b.height);
    ctx.fillStyle = "#ffd166";
    ctx.fillText(`${face.predicted_class} ${percent(face.confidence)}`, b.x, Math.max(12, b.y - 4));
  }
  if (box) {
    ctx.strokeStyle = "#00e676";
    ctx.strokeRect(box.x, box.y, box.width, box.height);
    ui.view.dataset.faceBox = JSON.stringify(box);
  }
  ui.view.dataset.faces = String(result.faces ? result.faces.length : box ? 1 : 0);
  if (result.saliency) await saliency.show(result.saliency, result.predicted_class, frame);
}

function showProbabilities(predictions) {
  const top = Object.keys(predictions).reduce((a, b) => (predictions[a] >= predictions[b] ? a : b));
  ui.bars.replaceChildren(...Object.entries(predictions).map(([label, p]) => {
    const item = document.createElement("li");
    item.dataset.label = label;
    item.dataset.probability = String(p);
    item.classList.toggle("top", label === top);
    item.innerHTML = '<span class="label"></span><span class="track" aria-hidden="true"><span class="fill"></span></span><span class="value"></span>';
    item.querySelector(".label").textContent = label;
    item.querySelector(".fill").style.width = percent(p);
    item.querySelector(".value").textContent = percent(p);
    return item;
  }));
  ui.predicted.textContent = `${top} (${percent(predictions[top])})`;
}

async function show(image, result, smooth) {
  await draw(image, result);
  document.body.dataset.analysed = String(Number(document.body.dataset.analysed ?? 0) + 1);
  if (result.error) {
    state.smoothed = null;
    ui.faceInfo.textContent = result.error;
    return;
  }
  const p = result.predictions;
  state.smoothed = smooth && state.smoothed
    ? Object.fromEntries(Object.entries(p).map(([c, v]) => [c, SMOOTHING * v + (1 - SMOOTHING) * state.smoothed[c]]))
    : p;
  showProbabilities(state.smoothed);
  const box = result.face_box;
  ui.faceInfo.textContent = box ? `face ${box.width}×${box.height} px, score ${box.score.toFixed(2)}` : (result.note ?? "");
}

async function grab(source, width, height) {
  frame.width = width;
  frame.height = height;
  frameContext.fillStyle = "#fff"; // transparency is flattened onto white, as the server does
  frameContext.fillRect(0, 0, width, height);
  frameContext.drawImage(source, 0, 0, width, height);
  return frameContext.getImageData(0, 0, width, height);
}

async function onFrame() {
  if (!state.stream) return;
  const image = await grab(ui.video, ui.video.videoWidth, ui.video.videoHeight);
  const result = await analyze(image);
  state.last = { image, result };
  state.done.push(performance.now());
  await show(image, result, true);
  ui.rate.textContent = `${frameRate().toFixed(1)} frames/s`;
  ui.rate.dataset.rate = String(frameRate());
  ui.video.requestVideoFrameCallback(onFrame);
}

async function toggleCamera() {
  if (state.stream) {
    state.stream.getTracks().forEach((t) => t.stop());
    state.stream = null;
    ui.camera.textContent = "Start camera";
    return;
  }
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" }, audio: false });
  } catch (err) {
    showError(`camera unavailable (${err.name}): allow camera access; off localhost the page needs HTTPS`);
    return;
  }
  ui.video.srcObject = state.stream;
  await ui.video.play();
  ui.camera.textContent = "Stop camera";
  state.done = [];
  ui.video.requestVideoFrameCallback(onFrame);
}

async function onFile() {
  const file = ui.file.files[0];
  if (!file) return;
  showError(null);
  try {
    const bitmap = await createImageBitmap(file, { colorSpaceConversion: "none", premultiplyAlpha: "none", imageOrientation: "from-image" });
    const image = await grab(bitmap, bitmap.width, bitmap.height);
    const result = await analyze(image);
    state.last = { image, result };
    await show(image, result, false);
    if (result.error) showError(result.error);
  } catch (err) {
    showError(`${file.name}: not an image this browser can decode (${err.message})`);
  }
}

async function start() {
  ui.camera.addEventListener("click", toggleCamera);
  ui.file.addEventListener("change", onFile);
  for (const radio of document.querySelectorAll('input[name="engine"]')) {
    radio.addEventListener("change", () => {
      state.engine = radio.value;
      state.smoothed = null;
      showEngine();
    });
  }
  if ("serviceWorker" in navigator && window.isSecureContext) {
    fetch(`${BASE}precache.json`).then((r) => r.json())
      .then((list) => navigator.serviceWorker.register(`sw.js?v=${list.version}`))
      .catch((err) => console.warn("service worker not registered:", err));
  }
  fetch(`${BASE}model/model.json`).then((r) => r.json()).then(showTrainingData).catch(() => {});
  try {
    state.pipeline = await Pipeline.create(BASE, VARIANT);
    const c = state.pipeline.classifier;
    showEngine();
  } catch (err) {
    state.engine = "server";
    document.querySelector('input[value="server"]').checked = true;
    ui.status.textContent = `On-device inference unavailable (${err.message}); using the server.`;
  }
  ui.camera.disabled = !navigator.mediaDevices;
  document.body.dataset.ready = state.engine;
}

/** The status line: which engine answers, and how the on-device model runs. */
function showEngine() {
  if (state.engine === "server") {
    ui.status.textContent = `Running on the server (${API}predict).`;
    return;
  }
  const c = state.pipeline.classifier;
  const views = state.pipeline.contract.tta.views;
  const threads = `${c.threads} WebAssembly thread${c.threads === 1 ? "" : "s"}`;
  const tta = views > 1 ? `${views}-view test-time augmentation` : "no test-time augmentation";
  ui.status.textContent = `Model ready on this device: ${c.variant}, ${threads}, ${tta}.`;
}

/** What the model learned from: its dataset card, carried in model.json. */
function showTrainingData(contract) {
  const data = contract.source && contract.source.training_data;
  if (!data) return;
  ui.modelInfo.textContent = data.summary;
  ui.modelInfo.classList.toggle("warning", !data.photos);
}

window.emotion.ready = start();
