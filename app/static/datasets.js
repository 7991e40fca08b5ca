// The "Download a data set" panel: digits, images per digit, first seed, format and a version
// pin (by default the served version) for POST /datasets. The zip streams in: the page reads the
// body as it comes, shows how much has arrived, then saves it.
import * as api from "./api.js";
import { $, markInvalid, saveBlob, say } from "./dom.js";
import { describeField, formatBytes } from "./format.js";
import { state } from "./state.js";

// A compressed 28 x 28 digit takes about this much of the zip (measured on the shipped model);
// the archive's own headers and manifest add the rest. It is only the progress bar's scale.
const BYTES_PER_IMAGE = 230;
const ARCHIVE_BYTES = 2000;
const INPUTS = { per_digit: "dataset-per-digit", seed: "dataset-seed", version: "dataset-version" };
const download = { controller: null, pinned: null }; // pinned: the version the field defaults to

const message = () => $("dataset-message");

function checkedDigits() {
  return [...document.querySelectorAll("input[name=dataset-digit]:checked")].map((box) =>
    Number(box.value),
  );
}

// The request body, or {errors, fields} for what cannot be sent.
function readForm() {
  const errors = [];
  const fields = [];
  const digits = checkedDigits();
  if (digits.length === 0) errors.push("Digits: tick at least one");
  const perDigit = Number($("dataset-per-digit").value.trim() || "x");
  if (!Number.isInteger(perDigit) || perDigit < 1) {
    errors.push(`${describeField("per_digit")}: enter a whole number of at least 1`);
    fields.push("per_digit");
  }
  const seedText = $("dataset-seed").value.trim();
  const seed = Number(seedText);
  if (seedText !== "" && (!Number.isInteger(seed) || seed < 0)) {
    errors.push("First seed (seed): enter a whole number of at least 0, or leave it empty");
    fields.push("seed");
  }
  if (errors.length) return { errors, fields };
  const body = { digits, per_digit: perDigit, format: $("dataset-format").value };
  if (seedText !== "") body.seed = seed;
  const version = $("dataset-version").value.trim();
  if (version !== "") body.version = version;
  return { body };
}

async function startDownload() {
  const { body, errors, fields } = readForm();
  if (errors) {
    markInvalid(fields.map((f) => INPUTS[f]));
    say(message(), `Please correct ${errors.join("; ")}.`, "error");
    return;
  }
  markInvalid([]);
  download.controller = new AbortController();
  setBusy(true);
  say(message(), "Asking the server for the data set…");
  try {
    await fetchDataset(body, download.controller.signal);
  } catch (error) {
    if (error.name === "AbortError") say(message(), "Download stopped.", "info");
    else say(message(), api.networkError(error), "error");
  } finally {
    setBusy(false);
  }
}

async function fetchDataset(body, signal) {
  const response = await api.postDataset(body, signal);
  if (!response.ok) {
    const problem = await api.explain(response);
    markInvalid(problem.fields.map((f) => INPUTS[f]).filter(Boolean));
    say(message(), problem.text, "error");
    return;
  }
  const count = body.digits.length * body.per_digit;
  const expected = Number(response.headers.get("Content-Length")) || estimateBytes(count);
  const blob = await readAll(response, expected);
  const filename = filenameOf(response) || `synthetic-mnist-${count}.zip`;
  saveBlob(blob, filename);
  const version = response.headers.get("X-Model-Version");
  const seed = response.headers.get("X-Seed");
  const what = `${count.toLocaleString("en")} images of the digits ${body.digits.join(", ")}`;
  const how = `model ${version}, first seed ${seed}, ${formatBytes(blob.size)}`;
  say(message(), `Saved ${filename}: ${what} (${how}).`, "ok");
}

const estimateBytes = (count) => ARCHIVE_BYTES + count * BYTES_PER_IMAGE;

// The streamed body, chunk by chunk, with the bytes so far against the bytes expected.
async function readAll(response, expected) {
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  showTransfer(0, expected);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    showTransfer(received, expected);
  }
  showTransfer(received, received, true);
  return new Blob(chunks, { type: "application/zip" });
}

function showTransfer(received, expected, done = false) {
  const bar = $("dataset-progress");
  const total = Math.max(expected, received);
  bar.max = total;
  bar.value = done ? total : Math.min(received, total * 0.99);
  const text = done
    ? `${formatBytes(received)} received`
    : `${formatBytes(received)} of about ${formatBytes(total)}`;
  bar.setAttribute("aria-valuetext", text);
  $("dataset-bytes").textContent = text;
  if (!done) say(message(), `Downloading: ${text}…`);
}

// The filename of Content-Disposition: attachment; filename="..."
function filenameOf(response) {
  const header = response.headers.get("Content-Disposition") || "";
  const match = /filename="?([^";]+)"?/i.exec(header);
  return match ? match[1] : null;
}

function setBusy(busy) {
  $("dataset-download").disabled = busy;
  $("dataset-stop").disabled = !busy;
  if (busy) $("dataset-transfer").hidden = false;
}

function setAll(checked) {
  for (const box of document.querySelectorAll("input[name=dataset-digit]")) box.checked = checked;
}

// The pin follows the served version, unless it was typed by hand.
function followVersion() {
  const field = $("dataset-version");
  if (field.value.trim() === "" || field.value.trim() === download.pinned) {
    field.value = state.version || "";
  }
  download.pinned = state.version;
}

export function initDatasets() {
  $("dataset-form").addEventListener("submit", (event) => {
    event.preventDefault();
    startDownload();
  });
  $("dataset-stop").addEventListener("click", () => download.controller?.abort());
  $("dataset-all").addEventListener("click", () => setAll(true));
  $("dataset-none").addEventListener("click", () => setAll(false));
  document.addEventListener("gan:info", followVersion);
}
