// The retraining job of the "Administration" panel: start one, watch its progress live (server-
// sent events) with its latest sample grid, show its outcome, cancel it.
import * as api from "./api.js";
import { $, markInvalid, say } from "./dom.js";
import { formatDuration, metricsSummary, percent } from "./format.js";
import { generate } from "./generate.js";
import { loadInfo } from "./model.js";
import { loadModels } from "./versions.js";

const TERMINAL = new Set(["succeeded", "failed", "cancelled", "interrupted"]);
const watched = {
  job: null, // the job being watched
  events: null, // its EventSource
  samplesAt: 0, // when the job's sample grid was last requested
};

// ----- starting ---------------------------------------------------------------------------
function readJobParams() {
  const params = {};
  for (const input of $("job-form").querySelectorAll("input, select")) {
    const raw = input.value.trim();
    if (raw === "") continue;
    if (input.tagName === "SELECT") {
      params[input.name] = raw;
      continue;
    }
    const value = Number(raw);
    // Anything that is not a number goes as typed: the server's 422 names the field.
    params[input.name] = Number.isFinite(value) ? value : raw;
  }
  return params;
}

async function startJob() {
  const message = $("admin-message");
  const params = readJobParams();
  markInvalid([]);
  say(message, "Starting a retraining job…");
  let response;
  try {
    response = await api.postJob(params);
  } catch (error) {
    say(message, api.networkError(error), "error");
    return;
  }
  if (!response.ok) {
    const problem = await api.explain(response);
    markInvalid(problem.fields.map((f) => `job-${f.replaceAll("_", "-")}`));
    say(message, problem.text, "error");
    if (response.status === 409) resumeActiveJob();
    return;
  }
  const job = await response.json();
  say(message, `Job ${job.id} started (${job.params.steps} steps).`, "ok");
  attach(job);
}

// Watches a job that is already running (a reload, or one started elsewhere).
export async function resumeActiveJob() {
  let response;
  try {
    response = await api.listJobs();
  } catch {
    return;
  }
  if (!response.ok) return;
  const jobs = await response.json();
  const active = jobs.find((job) => !TERMINAL.has(job.state));
  if (active && (!watched.job || watched.job.id !== active.id)) attach(active);
}

// ----- watching ---------------------------------------------------------------------------
function attach(job) {
  watched.job = job;
  watched.samplesAt = 0;
  $("job").hidden = false;
  $("job-id").textContent = job.id;
  $("job-samples-figure").hidden = true;
  $("job-result").textContent = "";
  const progress = $("job-progress");
  progress.max = Number(job.params.steps) || 1;
  progress.value = 0;
  $("job-stats").textContent = "Waiting for the first progress report…";
  if (job.progress && job.progress.step !== undefined) showProgress(job.progress);
  showState(job.state);
  if (TERMINAL.has(job.state)) {
    closeEvents();
    showOutcome(job);
  } else {
    openEvents(job.id);
  }
}

function showState(jobState) {
  $("job-state").textContent = jobState;
  $("job-cancel").disabled = TERMINAL.has(jobState);
  $("job-start").disabled = !TERMINAL.has(jobState);
}

function openEvents(jobId) {
  closeEvents();
  const events = api.jobEvents(jobId);
  watched.events = events;
  events.addEventListener("progress", (event) => showProgress(JSON.parse(event.data)));
  events.addEventListener("state", (event) => {
    const data = JSON.parse(event.data);
    showState(data.state);
    if (TERMINAL.has(data.state)) {
      closeEvents();
      refreshJob(jobId);
    }
  });
  events.addEventListener("error", () => streamError(events, jobId));
}

function streamError(events, jobId) {
  if (watched.events !== events) return;
  const message = $("admin-message");
  if (events.readyState === EventSource.CLOSED) {
    say(message, "The live progress stream closed; showing the job's last state.", "error");
    refreshJob(jobId);
  } else {
    say(message, "Lost the live progress stream; reconnecting…", "info");
  }
}

function closeEvents() {
  if (watched.events) watched.events.close();
  watched.events = null;
}

function showProgress(progress) {
  const step = Number(progress.step) || 0;
  const total = Number(progress.total_steps) || Number($("job-progress").max) || 1;
  const bar = $("job-progress");
  bar.max = total;
  bar.value = step;
  bar.setAttribute("aria-valuetext", `step ${step} of ${total}`);
  $("job-stats").textContent = progressText(progress, step, total);
  refreshSamples();
}

function progressText(progress, step, total) {
  const parts = [
    `Step ${step.toLocaleString("en")} of ${total.toLocaleString("en")} (${percent(step / total)})`,
  ];
  if (progress.epoch !== undefined) parts.push(`epoch ${progress.epoch}`);
  if (typeof progress.loss_d === "number") parts.push(`loss D ${progress.loss_d.toFixed(3)}`);
  if (typeof progress.loss_g === "number") parts.push(`loss G ${progress.loss_g.toFixed(3)}`);
  if (typeof progress.images_per_s === "number") {
    parts.push(`${Math.round(progress.images_per_s).toLocaleString("en")} images/s`);
  }
  if (typeof progress.eta_s === "number") {
    parts.push(`about ${formatDuration(progress.eta_s)} left`);
  }
  return parts.join(" · ");
}

// The sample grid is rewritten during training; a cache-buster fetches the newest one, at most
// every two seconds. Until training writes the first grid the request is a 404: the figure
// stays hidden.
function refreshSamples() {
  const job = watched.job;
  const now = Date.now();
  if (!job || now - watched.samplesAt < 2000) return;
  watched.samplesAt = now;
  const img = $("job-samples");
  img.onload = () => {
    $("job-samples-figure").hidden = false;
  };
  img.onerror = () => {};
  img.src = api.jobSamplesUrl(job.id, now);
}

async function refreshJob(jobId) {
  const job = await api.getJob(jobId, $("admin-message"));
  if (job === null) return;
  if (!watched.job || watched.job.id !== job.id) return;
  watched.job = job;
  showState(job.state);
  if (TERMINAL.has(job.state)) showOutcome(job);
}

// ----- the outcome ------------------------------------------------------------------------
// What each other end leaves: [the job's result line, the message, its kind].
const ENDINGS = {
  cancelled: (job) => [
    "The job was cancelled; it left no new version.",
    `Job ${job.id} cancelled.`,
    "ok",
  ],
  interrupted: (job) => [
    "A server restart interrupted the job.",
    `Job ${job.id} was interrupted.`,
    "error",
  ],
  failed: (job) => [
    `The job failed: ${job.error || "no reason recorded"}.`,
    `Job ${job.id} failed.`,
    "error",
  ],
};

function showOutcome(job) {
  if (job.state === "succeeded") {
    showSuccess(job);
    return;
  }
  if (!Object.hasOwn(ENDINGS, job.state)) return;
  const [result, text, kind] = ENDINGS[job.state](job);
  $("job-result").textContent = result;
  say($("admin-message"), text, kind);
}

function showSuccess(job) {
  if (job.progress && job.progress.total_steps) {
    showProgress({ ...job.progress, step: job.progress.total_steps, eta_s: 0 });
  }
  const decision = job.decision || {};
  const reasons = (decision.reasons || []).join("; ");
  $("job-result").textContent =
    `New version ${job.version}: ${metricsSummary(job.metrics || {})}. ` +
    `${decision.promote ? "Promoted: it is now served." : "Not activated"}` +
    `${reasons ? ` (${reasons})` : ""}.`;
  say($("admin-message"), `Job ${job.id} succeeded: version ${job.version}.`, "ok");
  loadModels();
  if (decision.promote) loadInfo().then(() => generate());
}

// ----- cancelling -------------------------------------------------------------------------
async function cancelJob() {
  const job = watched.job;
  if (!job) return;
  $("job-cancel").disabled = true;
  say($("admin-message"), `Cancelling job ${job.id}…`);
  const cancelled = await api.cancelJob(job.id, $("admin-message"));
  if (cancelled === null) {
    $("job-cancel").disabled = false;
    return;
  }
  closeEvents();
  watched.job = cancelled;
  showState(cancelled.state);
  showOutcome(cancelled);
}

export function initJobs() {
  $("job-form").addEventListener("submit", (event) => {
    event.preventDefault();
    startJob();
  });
  $("job-cancel").addEventListener("click", cancelJob);
}
