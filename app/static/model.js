// The "Active model" card: the version GET /info says is served, where it runs, its metrics; and
// the server's limits, written into the generation form.
import * as api from "./api.js";
import { $, make } from "./dom.js";
import { formatNumber, percent } from "./format.js";
import { state } from "./state.js";

const METRICS = [
  ["conditional_accuracy", "Conditional accuracy", (v) => percent(v)],
  ["fid", "FID (lower is better)", (v) => v.toFixed(2)],
  ["precision", "Precision", (v) => v.toFixed(3)],
  ["recall", "Recall", (v) => v.toFixed(3)],
  ["diversity", "Diversity (vs. real digits)", (v) => v.toFixed(3)],
];

// Reads /info into `state` and shows it; false when it failed (and the failure was said).
export async function loadInfo() {
  const info = await api.getInfo($("generate-message"));
  if (info === null) return false;
  state.info = info;
  state.version = info.model_version;
  showInfo(info);
  return true;
}

function showInfo(info) {
  $("model-version").textContent = info.model_version;
  $("model-device").textContent = `(on ${info.device}, ${info.dtype})`;
  for (const span of document.querySelectorAll(".max-n")) span.textContent = info.max_n;
  for (const span of document.querySelectorAll(".max-scale")) span.textContent = info.max_scale;
  $("count").max = info.max_n;
  $("scale").max = info.max_scale;
  renderMetrics($("model-metrics"), info.metrics || {});
}

// [label, shown value] of each metric: the known ones first, in order, then any others.
function metricRows(metrics) {
  const known = new Set(METRICS.map(([key]) => key));
  const rows = METRICS.filter(([key]) => typeof metrics[key] === "number").map(
    ([key, label, format]) => [label, format(metrics[key])],
  );
  for (const [key, value] of Object.entries(metrics)) {
    if (!known.has(key) && (typeof value === "number" || typeof value === "string")) {
      // Digests are for machines: show a recognisable prefix, like git does.
      const shown = key.endsWith("sha256") ? String(value).slice(0, 12) : formatNumber(value);
      rows.push([key.replaceAll("_", " "), shown]);
    }
  }
  return rows;
}

function renderMetrics(list, metrics) {
  const rows = metricRows(metrics);
  if (rows.length === 0) rows.push(["Metrics", "not evaluated"]);
  list.replaceChildren(
    ...rows.map(([label, value]) => {
      const div = make("div");
      div.append(make("dt", { textContent: label }), make("dd", { textContent: value }));
      return div;
    }),
  );
}
