// The page of the MNIST digit GAN service: plain JavaScript modules, no build step, same-origin
// API calls. This entry module (loaded by index.html) wires the panels together on load:
//   api.js       every request the page makes (apiJson, explain, the image and event URLs)
//   state.js     what the modules share: /info, the served version, the admin token
//   dom.js       small DOM helpers        format.js  numbers, metrics, field names in words
//   model.js     the "Active model" card  generate.js  the "Draw digits" panel
//   jobs.js      the retraining job       versions.js  the model versions table
import { $ } from "./dom.js";
import { generate, initGenerate } from "./generate.js";
import { initJobs, resumeActiveJob } from "./jobs.js";
import { loadInfo } from "./model.js";
import { state } from "./state.js";
import { initVersions, loadModels } from "./versions.js";

function initToken() {
  $("token").addEventListener("input", (event) => {
    state.token = event.target.value.trim();
  });
}

function init() {
  initGenerate();
  initToken();
  initJobs();
  initVersions();
  loadInfo().then((ok) => {
    if (ok) generate();
  });
  loadModels();
  resumeActiveJob();
}

init();
