// An honest time estimate before a job starts (GET /jobs/estimate): the server's measured
// throughput on its own hardware, or "unknown" when it has none, never a guess of the page's.
import * as api from "./api.js";
import { $ } from "./dom.js";
import { formatDuration } from "./format.js";
import { readJobParams } from "./job-form.js";
import { state } from "./state.js";

const DELAY_MS = 600;
const NO_TOKEN = "Estimated time: type the admin token for the server's estimate.";
const RUNNING = "Estimated time: asked again once the running job has ended.";
const MEASURING = "Estimated time: measuring (the server times a few training steps)…";
// One measurement at a time (each costs the server seconds of training); fields changed during
// one are measured again once it is done.
// `measured`: the query of the estimate shown, so that the same fields are not timed twice.
const estimate = { timer: 0, busy: false, again: false, text: "", time: "", measured: "" };

// The estimate's query: the job's parameters, so that the server can time what would train
// (the steps, the batch size, the networks); null when the length cannot be read.
function estimateQuery() {
  const params = readJobParams();
  if (params.preset) return params; // the server knows the recipe
  const steps = params.steps ?? 2000;
  const batch = params.batch_size ?? 64;
  if (!Number.isInteger(steps) || !Number.isInteger(batch) || steps < 1 || batch < 2) return null;
  return { ...params, steps, batch_size: batch };
}

function show(text, time = "") {
  estimate.text = text;
  estimate.time = time;
  $("job-estimate").textContent = text;
}

// The latest estimate in a few words ("estimated about 3 min 20 s") for the job's start message;
// empty while none is known.
export const latestEstimate = () => (estimate.time ? `estimated ${estimate.time}` : "");

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
    estimate.measured = "";
    return;
  }
  // Not while a job trains (timing beside it would slow it down), nor the same fields again.
  if ($("job-start").disabled) {
    show(RUNNING);
    estimate.measured = "";
    return;
  }
  const key = `${state.token} ${JSON.stringify(query)}`;
  if (key === estimate.measured) return;
  estimate.busy = true;
  show(MEASURING);
  const [text, time] = await measure(query);
  estimate.busy = false;
  if (estimate.again) {
    estimate.again = false;
    updateEstimate();
    return;
  }
  show(text, time);
  estimate.measured = time ? key : ""; // a failure is asked again
}

// [the estimate in words, its time alone ("about 3 min", "unknown") or "" if there is none]
async function measure(query) {
  let response;
  try {
    response = await api.postEstimate(query);
  } catch (error) {
    return [`Estimated time: unknown (${api.networkError(error)})`, ""];
  }
  if (!response.ok) return [await failureText(response), ""];
  const body = await response.json();
  return [describeEstimate(body), timeOf(body.seconds)];
}

const timeOf = (seconds) =>
  typeof seconds === "number" ? `about ${formatDuration(seconds)}` : "unknown";

async function failureText(response) {
  if (response.status === 401) return NO_TOKEN;
  if (response.status === 422) {
    const problem = await api.explain(response);
    if (problem.fields.length) return `Estimated time: unknown. ${problem.text}`;
  }
  return "Estimated time: unknown (this server gives no estimate).";
}

export function describeEstimate({ seconds, images_per_s: rate, steps, basis }) {
  const time = timeOf(seconds);
  const parts = [];
  if (typeof steps === "number") parts.push(`${steps.toLocaleString("en")} steps`);
  if (typeof rate === "number") parts.push(`${Math.round(rate).toLocaleString("en")} images/s`);
  if (basis) parts.push(basis);
  return `Estimated time: ${time}${parts.length ? ` (${parts.join("; ")})` : ""}.`;
}

export function initEstimate() {
  $("token").addEventListener("input", scheduleEstimate);
  $("job-custom").addEventListener("input", scheduleEstimate);
  $("job-custom").addEventListener("change", scheduleEstimate);
  for (const radio of document.querySelectorAll("input[name=job-recipe]")) {
    radio.addEventListener("change", scheduleEstimate);
  }
}
