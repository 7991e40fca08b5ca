// The "Active model" card: the version GET /info says is served, where it runs, its metrics (and
// its per-digit table when the evaluation wrote one); and
// the server's limits, written into the generation form. Every fresh /info is announced to the
// other panels as a "gan:info" event on the document.
import * as api from "./api.js";
import { $, make } from "./dom.js";
import { metricRows } from "./metrics.js";
import { perDigitTable, showIn } from "./per-digit.js";
import { state } from "./state.js";

// Reads /info into `state` and shows it; false when it failed (and the failure was said).
export async function loadInfo() {
  const info = await api.getInfo($("generate-message"));
  if (info === null) return false;
  state.info = info;
  state.version = info.model_version;
  showInfo(info);
  document.dispatchEvent(new CustomEvent("gan:info", { detail: info }));
  return true;
}

function showInfo(info) {
  $("model-version").textContent = info.model_version;
  $("model-device").textContent = `(on ${info.device}, ${info.dtype})`;
  for (const span of document.querySelectorAll(".max-n")) span.textContent = info.max_n;
  for (const span of document.querySelectorAll(".max-scale")) span.textContent = info.max_scale;
  $("count").max = info.max_n;
  $("scale").max = info.max_scale;
  const degraded = $("model-degraded");
  degraded.hidden = !info.degraded;
  degraded.textContent = info.degraded ? `Degraded: ${info.degraded}` : "";
  renderMetrics($("model-metrics"), info.metrics || {});
  showIn($("model-per-digit"), perDigitTable(info.metrics));
}

// One card: the label, then the value with its note (e.g. "FID 14.11 lower is better").
export function metricCard(row) {
  const value = make("dd");
  const shown = make("span", { className: "value", textContent: row.value });
  if (row.title) shown.title = row.title;
  value.append(shown);
  if (row.note) value.append(" ", make("small", { className: "note", textContent: row.note }));
  const card = make("div", { className: row.digest ? "digest" : "" });
  card.append(make("dt", { textContent: row.label }), value);
  return card;
}

export function renderMetrics(list, metrics) {
  const rows = metricRows(metrics);
  if (rows.length === 0) rows.push({ label: "Metrics", value: "not evaluated", note: "" });
  list.replaceChildren(...rows.map(metricCard));
}
