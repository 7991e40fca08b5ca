// The editor of the restore panel: a 28 x 28 digit (its ink) and the mask of its damaged pixels,
// shown scaled up on one <canvas>, the damage in red. Pointer strokes mark or unmark damage, or
// draw or erase ink; the digit and the mask leave as 28 x 28 PNG data: URLs.
import { $, make } from "./dom.js";

export const SIDE = 28;
const PIXELS = SIDE * SIDE;
const editor = { ink: new Uint8ClampedArray(PIXELS), mask: new Uint8Array(PIXELS), last: null };

export function setInk(grey) {
  editor.ink.set(grey);
  editor.mask.fill(0);
  render();
}

export const damagedPixels = () => editor.mask.reduce((sum, value) => sum + value, 0);

export const meanInk = () => editor.ink.reduce((sum, value) => sum + value, 0) / PIXELS;

export function clearMask() {
  editor.mask.fill(0);
  render();
}

export function invertInk() {
  for (let i = 0; i < PIXELS; i += 1) editor.ink[i] = 255 - editor.ink[i];
  render();
}

export function blank() {
  editor.ink.fill(0);
  editor.mask.fill(0);
  render();
}

// Damaged pixels are drawn red over their ink; the rest in grey.
function render() {
  const ctx = $("restore-canvas").getContext("2d");
  const image = ctx.createImageData(SIDE, SIDE);
  for (let i = 0; i < PIXELS; i += 1) {
    const g = editor.ink[i];
    const rgb = editor.mask[i] ? [128 + g / 2, g / 3, g / 3] : [g, g, g];
    image.data.set([...rgb, 255], i * 4);
  }
  ctx.putImageData(image, 0, 0);
}

// What the editor shows (damage in red), as a data: URL.
export const snapshot = () => $("restore-canvas").toDataURL("image/png");

function pngOf(values) {
  const canvas = make("canvas", { width: SIDE, height: SIDE });
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(SIDE, SIDE);
  values.forEach((value, i) => image.data.set([value, value, value, 255], i * 4));
  ctx.putImageData(image, 0, 0);
  return canvas.toDataURL("image/png");
}

export const imagePng = () => pngOf(editor.ink);

// The mask as POST /restore reads it: damaged pixels white (>= 128), the rest black.
export const maskPng = () => pngOf(editor.mask.map((value) => (value ? 255 : 0)));

// ----- images in ----------------------------------------------------------------------------
// Any image (an <img> or an ImageBitmap), fitted into 28 x 28 with its aspect kept, as grey
// ink. Transparent parts take the background that contrasts with the opaque ones.
export function inkFromImage(source, width, height) {
  const canvas = make("canvas", { width: SIDE, height: SIDE });
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const scale = SIDE / Math.max(width, height, 1);
  const [w, h] = [width * scale, height * scale];
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(source, (SIDE - w) / 2, (SIDE - h) / 2, w, h);
  return toGrey(ctx.getImageData(0, 0, SIDE, SIDE).data);
}

function toGrey(rgba) {
  const luminance = (i) => 0.299 * rgba[i] + 0.587 * rgba[i + 1] + 0.114 * rgba[i + 2];
  let sum = 0;
  let weight = 0;
  for (let i = 0; i < rgba.length; i += 4) {
    sum += luminance(i) * rgba[i + 3];
    weight += rgba[i + 3];
  }
  const background = weight && sum / weight > 127 ? 0 : 255;
  const grey = new Uint8ClampedArray(PIXELS);
  for (let p = 0; p < PIXELS; p += 1) {
    const alpha = rgba[p * 4 + 3] / 255;
    grey[p] = Math.round(luminance(p * 4) * alpha + background * (1 - alpha));
  }
  return grey;
}

// ----- painting -----------------------------------------------------------------------------
const TOOLS = {
  damage: (i) => (editor.mask[i] = 1),
  repair: (i) => (editor.mask[i] = 0),
  ink: (i) => (editor.ink[i] = 255),
  erase: (i) => (editor.ink[i] = 0),
};

function pointOf(event) {
  const rect = $("restore-canvas").getBoundingClientRect();
  return [
    ((event.clientX - rect.left) / rect.width) * SIDE,
    ((event.clientY - rect.top) / rect.height) * SIDE,
  ];
}

// A square brush of `size` pixels centred on (x, y).
function stamp(x, y) {
  const size = Number($("restore-brush").value) || 1;
  const tool = TOOLS[document.querySelector("input[name=restore-tool]:checked").value];
  const left = Math.floor(x - size / 2 + 0.5);
  const top = Math.floor(y - size / 2 + 0.5);
  for (let row = top; row < top + size; row += 1) {
    for (let col = left; col < left + size; col += 1) {
      if (row >= 0 && row < SIDE && col >= 0 && col < SIDE) tool(row * SIDE + col);
    }
  }
}

// From the last point to this one in half-pixel steps, so that a fast stroke leaves no gaps.
function strokeTo([x, y]) {
  const [x0, y0] = editor.last || [x, y];
  const steps = Math.max(1, Math.ceil(Math.hypot(x - x0, y - y0) * 2));
  for (let i = 1; i <= steps; i += 1) {
    stamp(x0 + ((x - x0) * i) / steps, y0 + ((y - y0) * i) / steps);
  }
  editor.last = [x, y];
  render();
}

export function initPaint() {
  const canvas = $("restore-canvas");
  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    editor.last = null;
    strokeTo(pointOf(event));
  });
  canvas.addEventListener("pointermove", (event) => {
    if (editor.last) strokeTo(pointOf(event));
  });
  for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
    canvas.addEventListener(type, () => (editor.last = null));
  }
  render();
}
