// The server's occlusion saliency (POST /predict?explain=true) over the face: the grayscale PNG
// is stretched onto `saliency.box` as a translucent heat map (brighter = the prediction drops
// more when that part of the face is hidden). Shared by the server page and the on-device client.

export async function drawSaliency(canvas, saliency) {
  const map = new Image();
  map.src = `data:image/png;base64,${saliency.png}`;
  await map.decode();
  const heat = new OffscreenCanvas(map.width, map.height);
  const hctx = heat.getContext("2d");
  hctx.drawImage(map, 0, 0);
  const pixels = hctx.getImageData(0, 0, map.width, map.height);
  for (let i = 0; i < pixels.data.length; i += 4) {
    const v = pixels.data[i];
    pixels.data.set([255, Math.round(200 * (1 - v / 255)), 0, Math.round(0.65 * v)], i);
  }
  hctx.putImageData(pixels, 0, 0);
  const { x, y, width, height } = saliency.box;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(heat, x, y, width, height);
  canvas.dataset.saliency = `${saliency.method} ${saliency.size}px`;
}
