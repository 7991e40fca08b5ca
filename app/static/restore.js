// The "Restore a damaged digit" panel: load a generated digit or upload an image (scaled to
// 28 x 28 here), paint its damage on the canvas (paint.js), send both to POST /restore, and show
// the restored digit, the reading (digit and score) and the reconstruction error.
import * as api from "./api.js";
import { $, say } from "./dom.js";
import { percent } from "./format.js";
import { metricCard } from "./model.js";
import * as paint from "./paint.js";

const ALL_PIXELS = paint.SIDE * paint.SIDE;
let loadedOnce = false;

const message = () => $("restore-message");

async function loadGenerated() {
  const digit = $("restore-source-digit").value;
  const seed = Number($("restore-source-seed").value.trim() || "x");
  if (!Number.isInteger(seed) || seed < 0) {
    say(message(), "Its seed: enter a whole number of at least 0.", "error");
    return;
  }
  const url = api.digitImageUrl(digit, seed, 1);
  const img = new Image();
  img.src = url;
  try {
    await img.decode();
  } catch {
    await explainImage(url);
    return;
  }
  paint.setInk(paint.inkFromImage(img, img.naturalWidth, img.naturalHeight));
  say(message(), `Loaded the generated ${digit} of seed ${seed}: now paint its damage.`, "ok");
}

async function explainImage(url) {
  try {
    const response = await api.refetchImage(url);
    const text = response.ok ? "The digit did not load." : (await api.explain(response)).text;
    say(message(), text, "error");
  } catch (error) {
    say(message(), api.networkError(error), "error");
  }
}

async function upload() {
  const file = $("restore-file").files[0];
  if (!file) return;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    say(message(), `${file.name} is not an image this browser can read.`, "error");
    return;
  }
  paint.setInk(paint.inkFromImage(bitmap, bitmap.width, bitmap.height));
  // MNIST digits are light on dark: a dark digit on a light page is turned round.
  const inverted = paint.meanInk() > 127;
  if (inverted) paint.invertInk();
  say(
    message(),
    `Loaded ${file.name} (${bitmap.width} × ${bitmap.height}, scaled to 28 × 28` +
      `${inverted ? ", inverted to light on dark" : ""}): now paint its damage.`,
    "ok",
  );
  bitmap.close();
}

// ----- restoring --------------------------------------------------------------------------
function requestBody() {
  const damaged = paint.damagedPixels();
  if (damaged === 0) {
    return { error: "Paint the damaged part first (brush “Mark damage”): only it is redrawn." };
  }
  if (damaged >= ALL_PIXELS) {
    return { error: "Leave some pixels undamaged: they guide the search." };
  }
  const body = { image: paint.imagePng(), mask: paint.maskPng(), format: "base64" };
  const digit = $("restore-digit").value;
  if (digit !== "") body.digit = Number(digit);
  return { body };
}

async function restore() {
  const { body, error } = requestBody();
  if (error) {
    say(message(), error, "error");
    return;
  }
  const before = paint.snapshot();
  $("restore-button").disabled = true;
  say(message(), "Restoring: searching the model for the digit that fits the undamaged pixels…");
  try {
    const response = await api.postRestore(body);
    if (response.ok) showResult(await response.json(), before);
    else say(message(), (await api.explain(response)).text, "error");
  } catch (failure) {
    say(message(), api.networkError(failure), "error");
  } finally {
    $("restore-button").disabled = false;
  }
}

function showResult(result, before) {
  const src = `data:image/png;base64,${result.png_base64}`;
  $("restore-before").src = before;
  $("restore-output").src = src;
  $("restore-save").href = src;
  $("restore-save").download = `restored-${result.digit}-seed-${result.seed}.png`;
  $("restore-reading").replaceChildren(...readingRows(result).map(metricCard));
  $("restore-result").hidden = false;
  const how = result.digit_given ? "the digit you gave" : "the digit it read";
  say(message(), `Restored as ${result.digit} (${how}), model ${result.model_version}.`, "ok");
}

function readingRows(result) {
  const reading = {
    label: result.digit_given ? "Digit (as you gave it)" : "Reading",
    value: String(result.digit),
    note: `score ${percent(result.score)}`,
  };
  const rows = [reading];
  const others = Object.entries(result.scores || {})
    .filter(([digit, share]) => Number(digit) !== result.digit && share >= 0.001)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 2);
  if (others.length) {
    const value = others.map(([digit, share]) => `${digit} · ${percent(share)}`).join(", ");
    rows.push({ label: "Next readings", value, note: "" });
  }
  rows.push(
    {
      label: "Reconstruction error",
      value: result.reconstruction_error.toFixed(3),
      note: "RMS over the undamaged pixels, 0 to 1; lower is better",
    },
    { label: "Damaged pixels", value: `${result.damaged_pixels} of ${ALL_PIXELS}`, note: "" },
    {
      label: "Search",
      value: `${result.steps} steps × ${result.restarts}`,
      note: `restarts, seed ${result.seed}`,
    },
  );
  return rows;
}

export function initRestore() {
  paint.initPaint();
  $("restore-load").addEventListener("click", loadGenerated);
  $("restore-file").addEventListener("change", upload);
  $("restore-clear-mask").addEventListener("click", paint.clearMask);
  $("restore-invert").addEventListener("click", paint.invertInk);
  $("restore-blank").addEventListener("click", paint.blank);
  $("restore-button").addEventListener("click", restore);
  // A digit to start from, once the page knows which version it draws with.
  document.addEventListener("gan:info", () => {
    if (!loadedOnce) loadGenerated();
    loadedOnce = true;
  });
}
