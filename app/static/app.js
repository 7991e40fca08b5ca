// The page of the MNIST digit GAN service: plain JavaScript modules, no build step, same-origin
// API calls. This entry module (loaded by index.html) wires the panels together on load:
//   api.js       every request the page makes (apiJson, explain, the image and event URLs)
//   state.js     what the modules share: /info, the served version, the admin token
//   dom.js       small DOM helpers        format.js  numbers, durations, bytes, field names
//   metrics.js   metrics in words         model.js   the "Active model" card
//   per-digit.js a version's per-digit metrics (digit, accuracy, FID) as a table
//   generate.js  the "Draw digits" panel
//   restore.js   the "Restore a damaged digit" panel (its canvas editor: paint.js)
//   datasets.js  the "Download a data set" panel
//   admin.js     the "Administration" panel, shown when the server has an admin token:
//     jobs.js      the retraining job (job-view.js its card, chart.js its loss chart,
//                  estimate.js its time estimate)
//     versions.js  the model versions table (activate.js the confirmation before serving one)
import { initActivation } from "./activate.js";
import { initAdmin } from "./admin.js";
import { initDatasets } from "./datasets.js";
import { generate, initGenerate } from "./generate.js";
import { initJobs } from "./jobs.js";
import { loadInfo } from "./model.js";
import { initRestore } from "./restore.js";
import { initVersions } from "./versions.js";

function init() {
  initGenerate();
  initRestore();
  initDatasets();
  initAdmin();
  initJobs();
  initVersions();
  initActivation();
  loadInfo().then((ok) => {
    if (ok) generate();
  });
}

init();
