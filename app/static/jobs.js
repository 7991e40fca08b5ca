// The retraining job of the "Administration" panel: start one (custom parameters or the shipped
// recipe), watch it live (server-sent events: state, phase, progress) with its loss chart and
// latest sample grid, show its outcome, cancel it. The card itself is drawn by job-view.js.
import * as api from "./api.js";
import { addPoints, initChart, resetChart } from "./chart.js";
import { $, markInvalid, say } from "./dom.js";
import { initEstimate, latestEstimate, scheduleEstimate } from "./estimate.js";
import { generate } from "./generate.js";
import { presetChosen, readJobParams } from "./job-form.js";
import * as view from "./job-view.js";
import { loadInfo } from "./model.js";
import { activateButton, loadModels } from "./versions.js";

const { TERMINAL } = view;
const watched = {
  job: null, // the job being watched
  events: null, // its EventSource
  phase: null, // what it is doing (null once it ended)
  progress: null, // its latest progress report
  samplesAt: 0, // when the job's sample grid was last requested
};

// ----- starting ---------------------------------------------------------------------------
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
  const steps = Number(job.params.steps).toLocaleString("en");
  const recipe = params.preset ? "the shipped recipe, " : "";
  const estimated = latestEstimate();
  const length = `${recipe}${steps} steps${estimated ? `; ${estimated}` : ""}`;
  say(message, `Job ${job.id} started (${length}).`, "ok");
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
  Object.assign(watched, { job, phase: job.phase, progress: null, samplesAt: 0 });
  $("job").hidden = false;
  $("job-id").textContent = job.id;
  $("job-samples-figure").hidden = true;
  $("job-result").replaceChildren();
  const progress = $("job-progress");
  progress.max = Number(job.params.steps) || 1;
  progress.value = 0;
  $("job-stats").textContent = "Waiting for the first progress report…";
  resetChart(job.params.steps);
  view.resetStatus();
  view.showStatus(job.state, job.phase);
  if (job.progress && job.progress.step !== undefined) onProgress(job.progress);
  loadHistory(job.id);
  if (TERMINAL.has(job.state)) {
    closeEvents();
    conclude(job);
  } else {
    openEvents(job.id);
  }
}

async function loadHistory(jobId) {
  let response;
  try {
    response = await api.getHistory(jobId);
  } catch {
    return; // the live events still fill the chart
  }
  if (response.ok && watched.job && watched.job.id === jobId) addPoints(await response.json());
}

function openEvents(jobId) {
  closeEvents();
  const events = api.jobEvents(jobId);
  watched.events = events;
  events.addEventListener("progress", (event) => onProgress(JSON.parse(event.data)));
  events.addEventListener("phase", (event) => onPhase(JSON.parse(event.data).phase));
  events.addEventListener("state", (event) => onState(JSON.parse(event.data), jobId));
  events.addEventListener("error", () => streamError(events, jobId));
}

function onState(data, jobId) {
  if (!isRunning()) return;
  watched.job = { ...watched.job, state: data.state };
  // A job starts running in its training phase (the server says so with the state alone).
  if (data.state === "running" && [null, "queued"].includes(watched.phase)) {
    watched.phase = "training";
  }
  if (TERMINAL.has(data.state)) watched.phase = null;
  view.showStatus(data.state, watched.phase);
  if (TERMINAL.has(data.state)) {
    closeEvents();
    refreshJob(jobId);
  }
}

function onPhase(phase) {
  if (!isRunning()) return;
  watched.phase = phase;
  view.showStatus(watched.job.state, phase);
  if (watched.progress) view.showProgress(watched.progress, phase); // the ETA goes
}

function onProgress(progress) {
  if (!watched.job || (TERMINAL.has(watched.job.state) && watched.progress)) return;
  watched.progress = progress;
  view.showProgress(progress, watched.phase);
  addPoints([progress]);
  refreshSamples();
}

const isRunning = () => watched.job !== null && !TERMINAL.has(watched.job.state);

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
  view.showStatus(job.state, job.phase);
  if (TERMINAL.has(job.state)) conclude(job);
}

// An ended job: its outcome, and the page follows a version it promoted.
function conclude(job) {
  watched.job = job;
  watched.phase = null;
  const said = view.showOutcome(job, activateButton);
  if (said) say($("admin-message"), ...said);
  scheduleEstimate(); // the form's next job
  if (job.state !== "succeeded") return;
  loadModels();
  if (job.decision && job.decision.promote) loadInfo().then(() => generate());
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
  if (!TERMINAL.has(cancelled.state)) return; // the stream tells when it has stopped
  closeEvents();
  view.showStatus(cancelled.state, null);
  conclude(cancelled);
}

function toggleRecipe() {
  $("job-custom").disabled = presetChosen();
}

export function initJobs() {
  $("job-form").addEventListener("submit", (event) => {
    event.preventDefault();
    startJob();
  });
  $("job-cancel").addEventListener("click", cancelJob);
  for (const radio of document.querySelectorAll("input[name=job-recipe]")) {
    radio.addEventListener("change", toggleRecipe);
  }
  initEstimate();
  initChart();
}
