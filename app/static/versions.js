// The "Model versions" table of the "Administration" panel: the store's versions, and serving
// another one.
import * as api from "./api.js";
import { $, make, say } from "./dom.js";
import { metricsSummary } from "./format.js";
import { generate } from "./generate.js";
import { loadInfo } from "./model.js";

export async function loadModels() {
  const versions = await api.listModels($("admin-message"));
  if (versions === null) return;
  $("models-body").replaceChildren(...versions.map(versionRow));
}

function versionRow(model) {
  const name = make("td");
  name.append(make("code", { textContent: model.version }));
  const created = make("td", { textContent: createdText(model.created_at) });
  const metrics = make("td", { textContent: metricsSummary(model.metrics || {}) });
  const served = make("td");
  served.append(
    model.active
      ? make("span", { className: "badge", textContent: "active" })
      : activateButton(model.version),
  );
  const row = make("tr");
  row.append(name, created, metrics, served);
  return row;
}

function createdText(createdAt) {
  return createdAt ? createdAt.replace("T", " ").replace("+00:00", " UTC") : "";
}

function activateButton(version) {
  const button = make("button", { type: "button", textContent: "Activate" });
  button.setAttribute("aria-label", `Activate version ${version}`);
  button.addEventListener("click", () => activate(version, button));
  return button;
}

async function activate(version, button) {
  const message = $("admin-message");
  button.disabled = true;
  say(message, `Activating ${version} (loading and warming it up)…`);
  const activated = await api.activateModel(version, message);
  if (activated === null) {
    button.disabled = false;
    return;
  }
  say(message, `Version ${version} is now served.`, "ok");
  await loadInfo();
  await loadModels();
  generate();
}

export function initVersions() {
  $("models-refresh").addEventListener("click", loadModels);
}
