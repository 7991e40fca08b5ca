// The confirmation before a version is served: the candidate beside the served version (metrics
// with their labels, per digit too where the evaluation wrote them, both sample grids), each
// quality gate it fails in words, and only on the person's explicit "Activate anyway" an
// activation with force=true.
import * as api from "./api.js";
import { $, make, say } from "./dom.js";
import { comparedTo, METRICS, metricRow } from "./metrics.js";
import { perDigitComparison, showIn } from "./per-digit.js";

// What each gate checks, as the reason a version fails it.
const GATE_REASONS = {
  evaluated: "It was never evaluated: it has no metrics to compare",
  min_conditional_accuracy: "Its conditional accuracy is below the minimum",
  min_recall: "Its recall is below the minimum",
  conditional_accuracy: "Its conditional accuracy is worse than the served version's",
  recall: "Its recall is worse than the served version's",
  diversity: "Its diversity is worse than the served version's",
  fid: "Its FID is worse (higher) than the served version's",
  same_evaluator: "It was scored by other classifier weights: the numbers do not compare",
  judge_evaluated: "The independent judge never scored it, and it scored the served version",
  judge_conditional_accuracy: "The independent judge finds its conditional accuracy worse",
  judge_recall: "The independent judge finds its recall worse",
  judge_diversity: "The independent judge finds its diversity worse",
  judge_fid: "The independent judge finds its FID worse (higher)",
  judge_same_evaluator: "It was scored by another judge: the numbers do not compare",
};
const pending = { version: null, force: false, onActivated: null };

export function gateReason(gate) {
  return GATE_REASONS[gate.name] || `It fails the gate “${gate.name}”`;
}

// One failed gate: what is worse, and the check with its numbers.
export function gateItem(gate) {
  const item = make("li");
  item.append(
    make("strong", { textContent: gateReason(gate) }),
    make("span", { className: "check", textContent: ` (check: ${gate.text})` }),
  );
  return item;
}

// Opens the confirmation for `version`; onActivated runs once it is served.
export async function openActivation(version, onActivated) {
  const message = $("admin-message");
  say(message, `Comparing ${version} with the served version…`);
  const comparison = await api.compareModel(version, message);
  if (comparison === null) return;
  say(message, "");
  Object.assign(pending, { version, force: !comparison.passes, onActivated });
  fillDialog(comparison);
  const dialog = $("activate-dialog");
  dialog.showModal();
  dialog.scrollTop = 0;
  $("activate-cancel").focus({ preventScroll: true }); // the safe choice first
}

function fillDialog(comparison) {
  const { candidate, active } = comparison;
  $("activate-version").textContent = candidate.version;
  $("activate-candidate-name").textContent = candidate.version;
  $("activate-active-name").textContent = `${active.version} (served)`;
  $("activate-candidate-caption").textContent = candidate.version;
  $("activate-active-caption").textContent = active.version;
  showGrid($("activate-candidate-samples"), candidate.samples_url);
  showGrid($("activate-active-samples"), active.samples_url);
  $("activate-metrics").replaceChildren(...comparisonRows(candidate, active));
  showIn($("activate-per-digit"), perDigitComparison(candidate.metrics, active.metrics));
  showVerdict(comparison.gates, active.version);
  say($("activate-message"), "");
  $("activate-confirm").disabled = false;
}

// The verdict line, the failed gates and the confirm button's words follow `pending.force`.
function showVerdict(gates, activeVersion) {
  const failed = gates.filter((gate) => !gate.passed);
  $("activate-gates").replaceChildren(...failed.map(gateItem));
  $("activate-verdict").textContent = pending.force
    ? `Serving it would be a step back from ${activeVersion}: it fails ` +
      `${failed.length} of ${gates.length} quality gate${gates.length === 1 ? "" : "s"}.`
    : `It passes all ${gates.length} quality gates against ${activeVersion}.`;
  $("activate-verdict").className = pending.force ? "message error" : "message ok";
  $("activate-confirm").textContent = pending.force ? "Activate anyway" : "Activate";
}

function showGrid(img, url) {
  const figure = img.closest("figure");
  figure.classList.toggle("missing", !url);
  img.onerror = () => figure.classList.add("missing");
  if (url) img.src = url;
  else img.removeAttribute("src");
}

const JUDGED = ["conditional_accuracy", "fid", "precision", "recall"];

function comparisonRows(candidate, active) {
  const a = candidate.metrics || {};
  const b = active.metrics || {};
  const keys = METRICS.map((m) => m.key).filter((key) => key in a || key in b);
  const rows = keys.map((key) => metricTableRow(key, a[key], b[key]));
  // The independent judge's scores (metrics.judge), which the gates compare too.
  const judgedA = a.judge || {};
  const judgedB = b.judge || {};
  for (const key of JUDGED.filter((name) => name in judgedA || name in judgedB)) {
    rows.push(metricTableRow(key, judgedA[key], judgedB[key], "Judge: "));
  }
  rows.push(textRow("Created", day(candidate.created_at), day(active.created_at)));
  rows.push(textRow("Trained steps", steps(candidate), steps(active)));
  return rows;
}

function metricTableRow(key, candidateValue, activeValue, prefix = "") {
  const shown = (value) => (value === undefined ? "—" : metricRow(key, value)?.value || "—");
  const label = prefix + (metricRow(key, candidateValue ?? activeValue)?.label || key);
  const row = textRow(label, shown(candidateValue), shown(activeValue));
  const verdict = comparedTo(key, candidateValue, activeValue);
  if (verdict) {
    row.cells[1].classList.add(verdict);
    row.cells[1].append(make("span", { className: "verdict", textContent: ` ${verdict}` }));
  }
  return row;
}

function textRow(label, candidateText, activeText) {
  const row = make("tr");
  row.append(
    make("th", { scope: "row", textContent: label }),
    make("td", { textContent: candidateText }),
    make("td", { textContent: activeText }),
  );
  return row;
}

const day = (createdAt) => (createdAt ? createdAt.slice(0, 10) : "—");

function steps(model) {
  const value = model.training && model.training.steps;
  return typeof value === "number" ? value.toLocaleString("en") : "—";
}

// ----- confirming -------------------------------------------------------------------------
async function confirmActivation() {
  const { version, force } = pending;
  const message = $("activate-message");
  $("activate-confirm").disabled = true;
  say(message, `Activating ${version} (loading and warming it up)…`);
  let response;
  try {
    response = await api.activateModel(version, force);
  } catch (error) {
    say(message, api.networkError(error), "error");
    $("activate-confirm").disabled = false;
    return;
  }
  if (response.ok) {
    activated(version);
    return;
  }
  await refused(response);
  $("activate-confirm").disabled = false;
}

// The server refused. A 409 naming failed gates (they changed since the comparison) turns the
// confirmation into an "Activate anyway"; anything else is said as it is.
async function refused(response) {
  const body = response.status === 409 ? await response.clone().json().catch(() => null) : null;
  if (body && Array.isArray(body.gates) && body.gates.length) {
    pending.force = true;
    showVerdict(body.gates, "the served version");
    say($("activate-message"), "The server found it worse than the served version.", "error");
    return;
  }
  say($("activate-message"), (await api.explain(response)).text, "error");
}

function activated(version) {
  $("activate-dialog").close();
  say($("admin-message"), `Version ${version} is now served.`, "ok");
  if (pending.onActivated) pending.onActivated(version);
}

export function initActivation() {
  $("activate-confirm").addEventListener("click", confirmActivation);
  $("activate-cancel").addEventListener("click", () => $("activate-dialog").close());
}
