// An honest time estimate before a job starts (GET /jobs/estimate): the server's measured
// throughput on its own hardware, or "unknown" when it has none, never a guess of the page's.
import * as api from "./api.js";
import { $ } from "./dom.js";
import { formatDuration } from "./format.js";
import { state } from "./state.js";

const DELAY_MS = 600;
const NO_TOKEN = "Estimated time: type the admin token for the server's estimate.";
const MEASURING = "Estimated time: measuring (the server times a few training steps)…";
// One measurement at a time (each costs the server seconds of training); fields changed during
// one are measured again once it is done.
const estimate = { timer: 0, busy: false, again: false, text: "" };

export const presetChosen = () =>
  document.querySelector("input[name=job-recipe]:checked")?.value === "shipped";

// The estimate's query, or null when the fields cannot be read.
function estimateQuery() {
  if (presetChosen()) return { preset: "shipped" }; // the server knows the recipe's length
  const steps = Number($("job-steps").value || 2000);
  const batch = Number($("job-batch-size").value || 64);
  if (!Number.isInteger(steps) || !Number.isInteger(batch) || steps < 1 || batch < 2) return null;
  return { steps, batch_size: batch };
}

function show(text) {
  estimate.text = text;
  $("job-estimate").textContent = text;
}

// The latest estimate in a few words ("estimated about 3 min 20 s (...)") for the job's start
// message; empty while none is known.
export function latestEstimate() {
  if (estimate.busy || !estimate.text.startsWith("Estimated time: ")) return "";
  return estimate.text.replace(/^Estimated time: /, "estimated ").replace(/\.$/, "");
}

export function scheduleEstimate() {
  clearTimeout(estimate.timer);
  estimate.timer = setTimeout(updateEstimate, DELAY_MS);
}

async function updateEstimate() {
  if (estimate.busy) {
    estimate.again = true;
    return;
  }
  const query = estimateQuery();
  if (query === null) {
    show("Estimated time: enter whole numbers of steps and images per batch.");
    return;
  }
  if (!state.token) {
    show(NO_TOKEN);
    return;
  }
  estimate.busy = true;
  show(MEASURING);
  const text = await measure(query);
  estimate.busy = false;
  if (estimate.again) {
    estimate.again = false;
    updateEstimate();
  } else {
    show(text);
  }
}

async function measure(query) {
  try {
    return await estimateText(await api.getEstimate(query));
  } catch (error) {
    return `Estimated time: unknown (${api.networkError(error)})`;
  }
}

async function estimateText(response) {
  if (response.status === 401) return NO_TOKEN;
  if (response.status === 422) {
    const problem = await api.explain(response);
    const ours = problem.fields.every((f) => f === "steps" || f === "batch_size");
    if (ours && problem.fields.length) return `Estimated time: unknown. ${problem.text}`;
  }
  if (!response.ok) return "Estimated time: unknown (this server gives no estimate).";
  return describeEstimate(await response.json());
}

export function describeEstimate({ seconds, images_per_s: rate, steps, basis }) {
  const time = typeof seconds === "number" ? `about ${formatDuration(seconds)}` : "unknown";
  const parts = [];
  if (typeof steps === "number") parts.push(`${steps.toLocaleString("en")} steps`);
  if (typeof rate === "number") parts.push(`${Math.round(rate).toLocaleString("en")} images/s`);
  if (basis) parts.push(basis);
  return `Estimated time: ${time}${parts.length ? ` (${parts.join("; ")})` : ""}.`;
}

export function initEstimate() {
  for (const id of ["job-steps", "job-batch-size", "token"]) {
    $(id).addEventListener("input", scheduleEstimate);
  }
  for (const radio of document.querySelectorAll("input[name=job-recipe]")) {
    radio.addEventListener("change", scheduleEstimate);
  }
}
