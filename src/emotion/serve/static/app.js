// Emotion recognition page: upload or webcam snapshot -> POST /predict -> preview, face box, bars,
// and with "Explain" the saliency map over the square the model saw, enlarged, with its scale.
import { SaliencyView } from "./saliency.js";

const $ = (id) => document.getElementById(id);
const ui = {
  file: $("file"), cameraToggle: $("camera-toggle"), cameraSnap: $("camera-snap"),
  detectFace: $("detect-face"), explain: $("explain"), status: $("status"), error: $("error"), video: $("video"),
  preview: $("preview"), faceInfo: $("face-info"), predicted: $("predicted"), bars: $("bars"),
  modelInfo: $("model-info"),
};
const saliency = new SaliencyView(ui.preview, $("saliency"));
const percent = (p) => `${(100 * p).toFixed(1)}%`;

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = !message;
}

function drawPreview(bitmap, box) {
  const canvas = ui.preview;
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0);
  delete canvas.dataset.faceBox;
  if (box) {
    ctx.lineWidth = Math.max(2, Math.round(Math.min(bitmap.width, bitmap.height) / 150));
    ctx.strokeStyle = "#00e676";
    ctx.strokeRect(box.x, box.y, box.width, box.height);
    canvas.dataset.faceBox = JSON.stringify(box);
  }
}

function showResult(result) {
  ui.bars.replaceChildren(...Object.entries(result.predictions).map(([label, p]) => {
    const item = document.createElement("li");
    item.dataset.label = label;
    item.dataset.probability = String(p);
    item.classList.toggle("top", label === result.predicted_class);
    item.innerHTML =
      '<span class="label"></span><span class="track" aria-hidden="true">' +
      '<span class="fill"></span></span><span class="value"></span>';
    item.querySelector(".label").textContent = label;
    item.querySelector(".fill").style.width = percent(p);
    item.querySelector(".value").textContent = percent(p);
    return item;
  }));
  ui.predicted.textContent =
    `${result.predicted_class} (${percent(result.confidence)} confidence)`;
  const box = result.face_box;
  ui.faceInfo.textContent = box
    ? `Face at ${box.x}, ${box.y} (${box.width}×${box.height} px), detector score ${box.score.toFixed(2)}.`
    : result.note || "";
}

async function analyse(blob) {
  showError("");
  ui.status.textContent = "Analysing…";
  try {
    const bitmap = await createImageBitmap(blob).catch(() => null);
    const form = new FormData();
    form.append("file", blob, blob.name || "snapshot.jpg");
    const query = new URLSearchParams();
    if (!ui.detectFace.checked) query.set("detect_face", "false");
    if (ui.explain.checked) query.set("explain", "true");
    const response = await fetch(`/predict?${query}`, { method: "POST", body: form });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(body.detail || `The server answered ${response.status}.`);
    }
    if (bitmap) drawPreview(bitmap, body.face_box);
    saliency.clear();
    if (bitmap && body.saliency) await saliency.show(body.saliency, body.predicted_class, bitmap);
    showResult(body);
    ui.status.textContent = `Done in ${(1000 * body.processing_time).toFixed(0)} ms.`;
  } catch (err) {
    ui.status.textContent = "";
    showError(err.message || String(err));
  }
}

ui.file.addEventListener("change", () => {
  if (ui.file.files.length) analyse(ui.file.files[0]);
});

// Webcam: offered only where the browser allows it (secure context: https or localhost).
let stream = null;

async function toggleCamera() {
  if (stream) {
    stream.getTracks().forEach((track) => track.stop());
    stream = null;
  } else {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    } catch (err) {
      showError(`Could not open the webcam: ${err.message}`);
      return;
    }
  }
  ui.video.srcObject = stream;
  ui.video.hidden = ui.cameraSnap.hidden = !stream;
  ui.cameraToggle.textContent = stream ? "Stop webcam" : "Start webcam";
}

function snapshot() {
  const canvas = document.createElement("canvas");
  canvas.width = ui.video.videoWidth;
  canvas.height = ui.video.videoHeight;
  canvas.getContext("2d").drawImage(ui.video, 0, 0);
  canvas.toBlob((blob) => blob && analyse(blob), "image/jpeg", 0.92);
}

// What the served model learned from (its dataset card, in model.json via /metadata).
fetch("/metadata")
  .then((response) => response.json())
  .then((meta) => {
    const data = meta.source && meta.source.training_data;
    if (!data) return;
    ui.modelInfo.textContent = data.summary;
    ui.modelInfo.classList.toggle("warning", !data.photos);
  })
  .catch(() => {});

if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
  ui.cameraToggle.hidden = false;
  ui.cameraToggle.addEventListener("click", toggleCamera);
  ui.cameraSnap.addEventListener("click", snapshot);
}
