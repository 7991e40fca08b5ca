// The "Administration" panel as a whole: shown only when /info says the server has an admin
// token (otherwise one line says how to turn it on), and the token, kept in memory only.
import { $ } from "./dom.js";
import { scheduleEstimate } from "./estimate.js";
import { resumeActiveJob } from "./jobs.js";
import { state } from "./state.js";
import { loadModels } from "./versions.js";

let shown = null; // whether the panel's body is shown: set by the first /info

function showAdmin(info) {
  const enabled = Boolean(info.admin_enabled);
  $("admin-off").hidden = enabled;
  $("admin-body").hidden = !enabled;
  if (enabled && shown !== true) {
    loadModels();
    resumeActiveJob();
    scheduleEstimate();
  }
  shown = enabled;
}

export function initAdmin() {
  $("token").addEventListener("input", (event) => {
    state.token = event.target.value.trim();
  });
  document.addEventListener("gan:info", (event) => showAdmin(event.detail));
}
