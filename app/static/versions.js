// The "Model versions" table of the "Administration" panel: the store's versions, and serving
// another one (through the confirmation of activate.js). A broken version is listed, disabled,
// with what is wrong with it; an evaluated one's per-digit metrics fold out under its summary.
import { openActivation } from "./activate.js";
import * as api from "./api.js";
import { $, make } from "./dom.js";
import { metricsSummary } from "./format.js";
import { generate } from "./generate.js";
import { loadInfo } from "./model.js";
import { perDigitTable } from "./per-digit.js";

export async function loadModels() {
  const versions = await api.listModels($("admin-message"));
  if (versions === null) return;
  $("models-body").replaceChildren(...versions.map(versionRow));
}

function versionRow(model) {
  const name = make("td");
  name.append(make("code", { className: "version-name", textContent: model.version }));
  const created = make("td", { textContent: createdText(model.created_at) });
  const metrics = make("td", {
    textContent: model.problem ? `broken: ${model.problem}` : metricsSummary(model.metrics || {}),
  });
  const perDigit = model.problem ? null : perDigitTable(model.metrics, model.version);
  if (perDigit) metrics.append(perDigitDetails(perDigit));
  const served = make("td");
  served.append(
    model.active
      ? make("span", { className: "badge", textContent: "active" })
      : activateButton(model.version, Boolean(model.problem)),
  );
  const row = make("tr", { className: model.problem ? "broken" : "" });
  row.append(name, created, metrics, served);
  return row;
}

// The per-digit table, folded: the row stays one line until it is opened.
function perDigitDetails(table) {
  const details = make("details", { className: "per-digit" });
  details.append(make("summary", { textContent: "Per digit" }), table);
  return details;
}

function createdText(createdAt) {
  return createdAt ? createdAt.replace("T", " ").replace("+00:00", " UTC") : "";
}

export function activateButton(version, broken = false) {
  const button = make("button", { type: "button", textContent: "Activate", disabled: broken });
  button.setAttribute("aria-label", `Activate version ${version}`);
  if (broken) button.title = "This version is broken: it cannot be served";
  button.addEventListener("click", () => openActivation(version, afterActivation));
  return button;
}

// Once another version is served: the page follows it.
export async function afterActivation() {
  await loadInfo();
  await loadModels();
  generate();
}

export function initVersions() {
  $("models-refresh").addEventListener("click", loadModels);
}
