// The "Draw digits" panel: the form, the result images (cacheable GET /digits/{digit}.png URLs,
// which carry the truncation when it is not 1) and the grid download (POST /generate).
import * as api from "./api.js";
import { $, make, markInvalid, saveBlob, say } from "./dom.js";
import { describeField } from "./format.js";
import { loadInfo } from "./model.js";
import { state } from "./state.js";

// The form's input of each API field.
const GENERATE_INPUTS = {
  digit: "digit",
  n: "count",
  seed: "seed",
  scale: "scale",
  truncation: "truncation",
};
// The lower end of the truncation control (the API itself takes any 0 < t <= 1).
const TRUNCATION_MIN = 0.1;
const RANDOM_SEED_BOUND = 2 ** 31;
let generation = 0; // bumps with every "Generate", so late answers of an older one are ignored

function randomSeed() {
  const buffer = new Uint32Array(1);
  crypto.getRandomValues(buffer);
  return buffer[0] % RANDOM_SEED_BOUND;
}

// Marks the inputs of the API fields a failed request blames.
function markFields(fields) {
  markInvalid(fields.map((f) => GENERATE_INPUTS[f]).filter(Boolean));
}

// ----- the form ---------------------------------------------------------------------------
function readWholeNumber(id, name, min) {
  const raw = $(id).value.trim();
  const value = Number(raw);
  if (raw === "" || !Number.isInteger(value) || value < min) {
    return { error: `${describeField(name)}: enter a whole number of at least ${min}` };
  }
  return { value };
}

// The truncation as a number from TRUNCATION_MIN to 1, or {error}.
function readTruncation() {
  const raw = $("truncation").value.trim();
  const value = Number(raw);
  if (raw === "" || !Number.isFinite(value) || value < TRUNCATION_MIN || value > 1) {
    return { error: `${describeField("truncation")}: enter a number from ${TRUNCATION_MIN} to 1` };
  }
  return { value };
}

// The fields of a POST /generate body that name the images beyond their seeds: truncation
// only when it is not 1, so an untruncated request is the one the page always sent.
function identity(form) {
  return form.truncation === 1 ? {} : { truncation: form.truncation };
}

// ", truncation 0.5" in texts about images, nothing for 1.
function truncationText(truncation) {
  return truncation === 1 ? "" : `, truncation ${truncation}`;
}

function readGenerateForm() {
  const errors = [];
  const fields = [];
  const read = (id, name, min) => {
    const result = readWholeNumber(id, name, min);
    if (result.error) {
      errors.push(result.error);
      fields.push(name);
    }
    return result.value;
  };
  const seed = read("seed", "seed", 0);
  const n = read("count", "n", 1);
  const scale = read("scale", "scale", 1);
  const truncation = readTruncation();
  if (truncation.error) {
    errors.push(truncation.error);
    fields.push("truncation");
  }
  // n is not part of the image URLs, so the page applies the server's limit itself.
  const maxN = state.info ? state.info.max_n : null;
  if (maxN !== null && n !== undefined && n > maxN) {
    errors.push(
      `${describeField("n")}: Input should be less than or equal to ${maxN} ` +
        "(server limit GAN_MAX_N)",
    );
    fields.push("n");
  }
  const digit = $("digit").value;
  return { digit, seed, n, scale, truncation: truncation.value, errors, fields };
}

// The form as read, or null once its mistakes have been said.
function validForm(message) {
  const form = readGenerateForm();
  if (form.errors.length === 0) return form;
  markInvalid(form.fields.map((f) => GENERATE_INPUTS[f]));
  say(message, `Please correct ${form.errors.join("; ")}.`, "error");
  return null;
}

// ----- drawing ----------------------------------------------------------------------------
export async function generate({ retried = false } = {}) {
  const form = validForm($("generate-message"));
  if (form === null) return;
  markInvalid([]);
  const current = ++generation;
  $("results").setAttribute("aria-busy", "true");
  say($("generate-message"), "Drawing…");
  const items = form.digit === "random" ? await drawRandom(form, current) : sequence(form);
  if (items !== null) render(items, form, current, retried);
}

// One digit: image i uses seed + i.
function sequence(form) {
  const digit = Number(form.digit);
  return Array.from({ length: form.n }, (_, i) => ({ digit, seed: form.seed + i }));
}

// The server draws each random digit from its seed; ask it which (28 px images, cheap), then
// show the same images through the cacheable per-digit URLs. Null: nothing to show.
async function drawRandom(form, current) {
  const results = $("results");
  const message = $("generate-message");
  let response;
  try {
    response = await api.postGenerate({
      n: form.n,
      seed: form.seed,
      format: "base64",
      ...identity(form),
    });
  } catch (error) {
    results.removeAttribute("aria-busy");
    say(message, api.networkError(error), "error");
    return null;
  }
  if (current !== generation) return null;
  if (!response.ok) {
    const problem = await api.explain(response);
    markFields(problem.fields);
    results.removeAttribute("aria-busy");
    say(message, problem.text, "error");
    return null;
  }
  const body = await response.json();
  if (body.model_version !== state.version) await loadInfo();
  return body.images.map((image) => ({ digit: image.digit, seed: image.seed }));
}

function render(items, form, current, retried) {
  const results = $("results");
  results.replaceChildren();
  results.style.setProperty("--cell", `${Math.max(28 * form.scale, 88)}px`);
  let pending = items.length;
  let failedUrl = null;
  const finished = () => {
    pending -= 1;
    if (pending > 0 || current !== generation) return;
    results.removeAttribute("aria-busy");
    if (failedUrl !== null) explainImageFailure(failedUrl, current, retried);
    else say($("generate-message"), summary(form, items.length), "ok");
  };
  const failed = (url) => {
    failedUrl = failedUrl || url;
    finished();
  };
  for (const { digit, seed } of items) {
    results.append(resultItem(digit, seed, form, finished, failed));
  }
}

function summary(form, count) {
  const which = form.digit === "random" ? "random digits" : `the digit ${form.digit}`;
  const last = form.seed + count - 1;
  const seeds = count === 1 ? `seed ${form.seed}` : `seeds ${form.seed}–${last}`;
  return (
    `${count} image${count === 1 ? "" : "s"} of ${which}, ${seeds}` +
    `${truncationText(form.truncation)}, model ${state.version}.`
  );
}

// One result: the image, its caption and its PNG link; a failed image removes its item.
function resultItem(digit, seed, { scale, truncation }, onLoad, onError) {
  const url = api.digitImageUrl(digit, seed, scale, truncation);
  const item = make("li");
  const img = make("img", {
    alt: `A generated handwritten ${digit} (seed ${seed}${truncationText(truncation)})`,
    width: 28 * scale,
    height: 28 * scale,
  });
  img.addEventListener("load", onLoad);
  img.addEventListener("error", () => {
    item.remove();
    onError(url);
  });
  img.src = url;
  const caption = make("figcaption");
  // The truncation, the same for every image, is in the summary line (and the alt text).
  const link = downloadLink(url, digit, seed, scale, truncation);
  caption.append(`${digit} · seed ${seed}`, " ", link);
  const figure = make("figure");
  figure.append(img, caption);
  item.append(figure);
  return item;
}

function downloadLink(url, digit, seed, scale, truncation) {
  const truncated = truncation === 1 ? "" : `-t${truncation}`;
  const link = make("a", {
    href: url,
    download: `digit-${digit}-seed-${seed}-x${scale}${truncated}.png`,
    textContent: "PNG",
  });
  link.setAttribute(
    "aria-label",
    `Download the ${digit} of seed ${seed}${truncationText(truncation)} as PNG`,
  );
  return link;
}

async function explainImageFailure(url, current, retried) {
  const message = $("generate-message");
  let response;
  try {
    response = await api.refetchImage(url);
  } catch (error) {
    say(message, api.networkError(error), "error");
    return;
  }
  if (current !== generation) return;
  if (response.ok) {
    say(message, "Some images did not load; please try again.", "error");
    return;
  }
  const problem = await api.explain(response);
  // A 404: another version was activated since this page read /info; follow it once.
  if (response.status === 404 && !retried && (await loadInfo())) {
    generate({ retried: true });
    return;
  }
  markFields(problem.fields);
  say(message, problem.text, "error");
}

// ----- the grid download ------------------------------------------------------------------
async function downloadGrid() {
  const message = $("generate-message");
  const form = validForm(message);
  if (form === null) return;
  const body = {
    n: form.n,
    seed: form.seed,
    scale: form.scale,
    format: "png",
    grid: true,
    ...identity(form),
  };
  if (form.digit !== "random") body.digit = Number(form.digit);
  say(message, "Preparing the PNG grid…");
  let response;
  try {
    response = await api.postGenerate(body);
  } catch (error) {
    say(message, api.networkError(error), "error");
    return;
  }
  if (!response.ok) {
    const problem = await api.explain(response);
    markFields(problem.fields);
    say(message, problem.text, "error");
    return;
  }
  const truncated = form.truncation === 1 ? "" : `-t${form.truncation}`;
  const filename =
    `digits-${form.digit}-seed-${form.seed}-n${form.n}-x${form.scale}${truncated}.png`;
  saveBlob(await response.blob(), filename);
  say(message, `Downloaded ${filename} (model ${response.headers.get("X-Model-Version")}).`, "ok");
}

export function initGenerate() {
  $("generate-form").addEventListener("submit", (event) => {
    event.preventDefault();
    generate();
  });
  $("regenerate-button").addEventListener("click", () => {
    $("seed").value = String(randomSeed());
    generate();
  });
  $("download-button").addEventListener("click", downloadGrid);
}
