// What the job card shows: the job's state and phase (queued, training, evaluating, publishing,
// then how it ended), its progress line (the ETA only while training) and its outcome.
import { $, make } from "./dom.js";
import { formatDuration, metricsSummary, percent } from "./format.js";
import { gateItem } from "./activate.js";

export const TERMINAL = new Set(["succeeded", "failed", "cancelled", "interrupted"]);
const PHASES = ["queued", "training", "evaluating", "publishing"];

const shown = { phase: "queued" }; // the last phase the job was seen in

// The state line and the phase list. `phase` is null once the job ended.
export function showStatus(jobState, phase) {
  const ended = TERMINAL.has(jobState);
  if (phase) shown.phase = phase;
  $("job-state").textContent = jobState;
  $("job-phase").textContent = !ended && phase ? `· ${phase}` : "";
  $("job-cancel").disabled = ended;
  $("job-start").disabled = !ended;
  markPhases(ended ? jobState : null);
  const end = $("job-end");
  end.textContent = ended ? jobState : "ended";
  end.classList.toggle("ok", jobState === "succeeded");
  end.classList.toggle("error", ended && jobState !== "succeeded");
}

export function resetStatus() {
  shown.phase = "queued";
}

// Phases before the current one are done; a job that ended early stopped in its last phase.
function markPhases(ending) {
  const reached = ending === "succeeded" ? PHASES.length : PHASES.indexOf(shown.phase);
  for (const item of $("job-phases").children) {
    const index = item.id === "job-end" ? PHASES.length : PHASES.indexOf(item.dataset.phase);
    const current = ending ? item.id === "job-end" : index === reached;
    item.classList.toggle("done", index < reached);
    const stopped = Boolean(ending) && ending !== "succeeded" && index === reached;
    item.classList.toggle("stopped", stopped);
    item.classList.toggle("current", current);
    if (current) item.setAttribute("aria-current", "step");
    else item.removeAttribute("aria-current");
  }
}

// The progress bar and line; the ETA only while training.
export function showProgress(progress, phase) {
  const step = Number(progress.step) || 0;
  const total = Number(progress.total_steps) || Number($("job-progress").max) || 1;
  const bar = $("job-progress");
  bar.max = total;
  bar.value = step;
  bar.setAttribute("aria-valuetext", `step ${step} of ${total}`);
  $("job-stats").textContent = progressText(progress, step, total, phase === "training");
}

function progressText(progress, step, total, training) {
  const parts = [
    `Step ${step.toLocaleString("en")} of ${total.toLocaleString("en")} (${percent(step / total)})`,
  ];
  if (progress.epoch !== undefined) parts.push(`epoch ${progress.epoch}`);
  if (typeof progress.loss_d === "number") parts.push(`loss D ${progress.loss_d.toFixed(3)}`);
  if (typeof progress.loss_g === "number") parts.push(`loss G ${progress.loss_g.toFixed(3)}`);
  if (typeof progress.images_per_s === "number") {
    parts.push(`${Math.round(progress.images_per_s).toLocaleString("en")} images/s`);
  }
  if (training && typeof progress.eta_s === "number") {
    parts.push(`about ${formatDuration(progress.eta_s)} left`);
  }
  return parts.join(" · ");
}

// ----- the outcome ------------------------------------------------------------------------
// What each other end leaves: [the job's result line, the message, its kind].
const ENDINGS = {
  cancelled: (job) => [
    `The job was cancelled${stoppedAt(job)}; it left no new version.`,
    `Job ${job.id} cancelled.`,
    "ok",
  ],
  interrupted: (job) => [
    `A server restart interrupted the job${stoppedAt(job)}.`,
    `Job ${job.id} was interrupted.`,
    "error",
  ],
  failed: (job) => [
    `The job failed: ${job.error || "no reason recorded"}.`,
    `Job ${job.id} failed.`,
    "error",
  ],
};

function stoppedAt(job) {
  const step = job.progress && job.progress.step;
  return typeof step === "number" ? ` at step ${step.toLocaleString("en")}` : "";
}

// The outcome of an ended job as [message, kind]; a new version comes with its Activate button
// (made by `activateButton(version)`).
export function showOutcome(job, activateButton) {
  $("job-stats").textContent = "";
  if (job.state === "succeeded") return showSuccess(job, activateButton);
  if (!Object.hasOwn(ENDINGS, job.state)) return null;
  const [result, text, kind] = ENDINGS[job.state](job);
  $("job-result").replaceChildren(make("p", { textContent: result }));
  return [text, kind];
}

function showSuccess(job, activateButton) {
  const total = job.progress && job.progress.total_steps;
  if (total) {
    $("job-progress").max = total;
    $("job-progress").value = total;
  }
  const decision = job.decision || {};
  const line = make("p", {
    textContent: `New version ${job.version}: ${metricsSummary(job.metrics || {})}.`,
  });
  const parts = [line, make("p", { textContent: decisionText(decision) })];
  const failed = (decision.gates || []).filter((gate) => !gate.passed);
  if (!decision.promote && failed.length) {
    const list = make("ul", { className: "gates" });
    list.append(...failed.map(gateItem));
    parts.push(list);
  }
  if (!decision.promote && job.version) {
    const buttons = make("div", { className: "buttons" });
    buttons.append(activateButton(job.version));
    parts.push(buttons);
  }
  $("job-result").replaceChildren(...parts);
  return [`Job ${job.id} succeeded: version ${job.version}.`, "ok"];
}

function decisionText(decision) {
  if (decision.promote) return "It passed every quality gate and is now served.";
  const failed = (decision.gates || []).filter((gate) => !gate.passed).length;
  const gates = failed
    ? `it fails ${failed} quality gate${failed === 1 ? "" : "s"} against the served version`
    : "it passes the quality gates";
  if (decision.policy === "manual") {
    return `Not activated: this server leaves that to you (manual promotion); ${gates}.`;
  }
  return `Not activated: ${gates}.`;
}
