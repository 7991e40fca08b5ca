// The page of the MNIST digit GAN service: plain JavaScript, no build step, same-origin API calls.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  const state = {
    info: null, // GET /info
    version: null, // the active model version: image URLs pin it (immutable browser caching)
    token: "", // the admin token: in memory only, never stored
    generation: 0, // bumps with every "Generate", so late answers of an older one are ignored
    job: null, // the job being watched
    events: null, // its EventSource
    samplesAt: 0, // when the job's sample grid was last requested
  };

  // API field names as the form calls them, so that a 422 names what the person typed.
  const FIELD_LABELS = {
    digit: "Digit",
    n: "How many",
    seed: "Seed",
    scale: "Scale",
    steps: "Steps",
    batch_size: "Batch size",
    loss: "Loss",
    mode_seeking: "Mode-seeking weight",
    aux_classifier: "Aux. classifier weight",
    lr_g: "Generator learning rate",
    lr_d: "Discriminator learning rate",
    latent_dim: "Latent size",
    embed_dim: "Label embedding size",
    g_channels: "Generator channels",
    d_channels: "Discriminator channels",
    eval_per_digit: "Evaluation samples per digit",
  };
  const GENERATE_INPUTS = { digit: "digit", n: "count", seed: "seed", scale: "scale" };
  const TERMINAL = new Set(["succeeded", "failed", "cancelled", "interrupted"]);
  const METRICS = [
    ["conditional_accuracy", "Conditional accuracy", (v) => percent(v)],
    ["fid", "FID (lower is better)", (v) => v.toFixed(2)],
    ["precision", "Precision", (v) => v.toFixed(3)],
    ["recall", "Recall", (v) => v.toFixed(3)],
    ["diversity", "Diversity (vs. real digits)", (v) => v.toFixed(3)],
  ];
  const RANDOM_SEED_BOUND = 2 ** 31;

  // ----- small helpers ----------------------------------------------------------------------
  function percent(value) {
    return `${(value * 100).toFixed(1)} %`;
  }

  function formatNumber(value) {
    if (typeof value !== "number") return String(value);
    return Number.isInteger(value) ? value.toLocaleString("en") : value.toPrecision(4);
  }

  function formatDuration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }

  function say(element, text, kind = "info") {
    element.textContent = text;
    element.className = `message ${kind}`;
  }

  function markInvalid(inputIds) {
    for (const input of document.querySelectorAll("[aria-invalid]")) {
      input.removeAttribute("aria-invalid");
    }
    for (const id of inputIds) $(id)?.setAttribute("aria-invalid", "true");
  }

  function fieldName(loc) {
    const parts = (loc || []).filter((p) => !["body", "query", "path", "header"].includes(p));
    return parts.length ? parts.join(".") : (loc || []).join(".");
  }

  function describeField(name) {
    const label = FIELD_LABELS[name];
    return label ? `${label} (${name})` : name;
  }

  function randomSeed() {
    const buffer = new Uint32Array(1);
    crypto.getRandomValues(buffer);
    return buffer[0] % RANDOM_SEED_BOUND;
  }

  async function api(path, { method = "GET", json, admin = false, signal } = {}) {
    const headers = {};
    if (json !== undefined) headers["Content-Type"] = "application/json";
    if (admin && state.token) headers.Authorization = `Bearer ${state.token}`;
    const body = json === undefined ? undefined : JSON.stringify(json);
    return fetch(path, { method, headers, body, signal });
  }

  // A failed response as one sentence for people, plus the API fields it blames.
  async function explain(response) {
    let detail = null;
    try {
      detail = (await response.json()).detail;
    } catch {
      detail = null;
    }
    const status = response.status;
    const fields = [];
    let text;
    if (status === 422 && Array.isArray(detail)) {
      const parts = detail.map((error) => {
        const name = fieldName(error.loc);
        fields.push(name);
        return `${describeField(name)}: ${error.msg}${limitHint(name, error.msg)}`;
      });
      text = `Please correct ${parts.join("; ")}.`;
    } else if (status === 503) {
      const retry = response.headers.get("Retry-After");
      const wait = retry ? `Try again in ${retry} s (Retry-After: ${retry}).` : "Try again shortly.";
      text = `The server is busy: ${detail || "service unavailable"}. ${wait}`;
    } else if (status === 401) {
      text =
        `The admin token was not accepted (${detail || "unauthorized"}). ` +
        "Type the token the server was started with (GAN_ADMIN_TOKEN) in “Admin token”.";
    } else if (status === 403) {
      text =
        "Administration is disabled on this server: " +
        `${detail || "no admin token is configured"}.`;
    } else {
      const what = typeof detail === "string" ? detail : response.statusText;
      text = `Request failed (HTTP ${status}): ${what || "no details"}.`;
    }
    return { text, fields, status, detail };
  }

  // Past the schema's hard ceiling the server quotes that ceiling, not its configured limit.
  function limitHint(name, msg) {
    const limits = { n: "max_n", scale: "max_scale" };
    if (!state.info || !limits[name] || String(msg).includes("server limit")) return "";
    return ` (this server allows at most ${state.info[limits[name]]})`;
  }

  function networkError(error) {
    return `Cannot reach the server (${error.message || error}). Is it running?`;
  }

  // An API call whose failure the page reports in `message`: the parsed JSON body, or null
  // once the network error or the server's explanation has been said.
  async function apiJson(path, message, options) {
    let response;
    try {
      response = await api(path, options);
    } catch (error) {
      say(message, networkError(error), "error");
      return null;
    }
    if (!response.ok) {
      say(message, (await explain(response)).text, "error");
      return null;
    }
    return response.json();
  }

  // ----- the active model -------------------------------------------------------------------
  async function loadInfo() {
    const info = await apiJson("/info", $("generate-message"));
    if (info === null) return false;
    state.info = info;
    state.version = info.model_version;
    $("model-version").textContent = info.model_version;
    $("model-device").textContent = `(on ${info.device}, ${info.dtype})`;
    for (const span of document.querySelectorAll(".max-n")) span.textContent = info.max_n;
    for (const span of document.querySelectorAll(".max-scale")) span.textContent = info.max_scale;
    $("count").max = info.max_n;
    $("scale").max = info.max_scale;
    renderMetrics($("model-metrics"), info.metrics || {});
    return true;
  }

  function renderMetrics(list, metrics) {
    list.replaceChildren();
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
    if (rows.length === 0) {
      const div = document.createElement("div");
      div.append(Object.assign(document.createElement("dt"), { textContent: "Metrics" }));
      div.append(Object.assign(document.createElement("dd"), { textContent: "not evaluated" }));
      list.append(div);
      return;
    }
    for (const [label, value] of rows) {
      const div = document.createElement("div");
      div.append(Object.assign(document.createElement("dt"), { textContent: label }));
      div.append(Object.assign(document.createElement("dd"), { textContent: value }));
      list.append(div);
    }
  }

  function metricsSummary(metrics) {
    const parts = [];
    if (typeof metrics.conditional_accuracy === "number") {
      parts.push(`accuracy ${percent(metrics.conditional_accuracy)}`);
    }
    if (typeof metrics.fid === "number") parts.push(`FID ${metrics.fid.toFixed(2)}`);
    if (typeof metrics.recall === "number") parts.push(`recall ${metrics.recall.toFixed(3)}`);
    if (typeof metrics.diversity === "number") {
      parts.push(`diversity ${metrics.diversity.toFixed(3)}`);
    }
    return parts.length ? parts.join(" · ") : "not evaluated";
  }

  // ----- drawing digits ---------------------------------------------------------------------
  function readWholeNumber(id, name, min) {
    const raw = $(id).value.trim();
    const value = Number(raw);
    if (raw === "" || !Number.isInteger(value) || value < min) {
      return { error: `${describeField(name)}: enter a whole number of at least ${min}` };
    }
    return { value };
  }

  function readGenerateForm() {
    const errors = [];
    const fields = [];
    const read = (id, name, min) => {
      const result = readWholeNumber(id, name, min);
      if (result.error) {
        errors.push(result.error);
        fields.push(name);
      }
      return result.value;
    };
    const seed = read("seed", "seed", 0);
    const n = read("count", "n", 1);
    const scale = read("scale", "scale", 1);
    // n is not part of the image URLs, so the page applies the server's limit itself.
    const maxN = state.info ? state.info.max_n : null;
    if (maxN !== null && n !== undefined && n > maxN) {
      errors.push(
        `${describeField("n")}: Input should be less than or equal to ${maxN} ` +
          "(server limit GAN_MAX_N)",
      );
      fields.push("n");
    }
    const digit = $("digit").value;
    return { digit, seed, n, scale, errors, fields };
  }

  function imageUrl(digit, seed, scale) {
    const params = new URLSearchParams({ seed: String(seed), scale: String(scale) });
    if (state.version) params.set("version", state.version);
    return `/digits/${digit}.png?${params}`;
  }

  async function generate({ retried = false } = {}) {
    const message = $("generate-message");
    const form = readGenerateForm();
    if (form.errors.length) {
      markInvalid(form.fields.map((f) => GENERATE_INPUTS[f]));
      say(message, `Please correct ${form.errors.join("; ")}.`, "error");
      return;
    }
    markInvalid([]);
    const generation = ++state.generation;
    const results = $("results");
    results.setAttribute("aria-busy", "true");
    say(message, "Drawing…");
    let items;
    if (form.digit === "random") {
      // The server draws each random digit from its seed; ask it which (28 px images, cheap),
      // then show the same images through the cacheable per-digit URLs.
      let response;
      try {
        response = await api("/generate", {
          method: "POST",
          json: { n: form.n, seed: form.seed, format: "base64" },
        });
      } catch (error) {
        results.removeAttribute("aria-busy");
        say(message, networkError(error), "error");
        return;
      }
      if (generation !== state.generation) return;
      if (!response.ok) {
        const problem = await explain(response);
        markInvalid(problem.fields.map((f) => GENERATE_INPUTS[f]).filter(Boolean));
        results.removeAttribute("aria-busy");
        say(message, problem.text, "error");
        return;
      }
      const body = await response.json();
      if (body.model_version !== state.version) await loadInfo();
      items = body.images.map((image) => ({ digit: image.digit, seed: image.seed }));
    } else {
      const digit = Number(form.digit);
      items = Array.from({ length: form.n }, (_, i) => ({ digit, seed: form.seed + i }));
    }
    render(items, form, generation, retried);
  }

  function render(items, form, generation, retried) {
    const results = $("results");
    const message = $("generate-message");
    results.replaceChildren();
    results.style.setProperty("--cell", `${Math.max(28 * form.scale, 88)}px`);
    let pending = items.length;
    let failedUrl = null;
    const finished = () => {
      pending -= 1;
      if (pending > 0 || generation !== state.generation) return;
      results.removeAttribute("aria-busy");
      if (failedUrl !== null) {
        explainImageFailure(failedUrl, generation, retried);
        return;
      }
      const which = form.digit === "random" ? "random digits" : `the digit ${form.digit}`;
      const last = form.seed + items.length - 1;
      const seeds = items.length === 1 ? `seed ${form.seed}` : `seeds ${form.seed}–${last}`;
      say(
        message,
        `${items.length} image${items.length === 1 ? "" : "s"} of ${which}, ${seeds}, ` +
          `model ${state.version}.`,
        "ok",
      );
    };
    for (const { digit, seed } of items) {
      const url = imageUrl(digit, seed, form.scale);
      const item = document.createElement("li");
      const figure = document.createElement("figure");
      const img = document.createElement("img");
      img.alt = `A generated handwritten ${digit} (seed ${seed})`;
      img.width = 28 * form.scale;
      img.height = 28 * form.scale;
      img.addEventListener("load", finished);
      img.addEventListener("error", () => {
        failedUrl = failedUrl || url;
        item.remove();
        finished();
      });
      img.src = url;
      const caption = document.createElement("figcaption");
      caption.append(`${digit} · seed ${seed}`);
      const link = document.createElement("a");
      link.href = url;
      link.download = `digit-${digit}-seed-${seed}-x${form.scale}.png`;
      link.textContent = "PNG";
      link.setAttribute("aria-label", `Download the ${digit} of seed ${seed} as PNG`);
      caption.append(" ", link);
      figure.append(img, caption);
      item.append(figure);
      results.append(item);
    }
  }

  // An <img> cannot read its error; ask for the same URL to learn the status and the reason.
  async function explainImageFailure(url, generation, retried) {
    const message = $("generate-message");
    let response;
    try {
      response = await fetch(url, { cache: "no-store" });
    } catch (error) {
      say(message, networkError(error), "error");
      return;
    }
    if (generation !== state.generation) return;
    if (response.ok) {
      say(message, "Some images did not load; please try again.", "error");
      return;
    }
    const problem = await explain(response);
    if (response.status === 404 && !retried) {
      // Another version was activated since this page read /info: follow it once.
      if (await loadInfo()) {
        generate({ retried: true });
        return;
      }
    }
    markInvalid(problem.fields.map((f) => GENERATE_INPUTS[f]).filter(Boolean));
    say(message, problem.text, "error");
  }

  async function downloadGrid() {
    const message = $("generate-message");
    const form = readGenerateForm();
    if (form.errors.length) {
      markInvalid(form.fields.map((f) => GENERATE_INPUTS[f]));
      say(message, `Please correct ${form.errors.join("; ")}.`, "error");
      return;
    }
    const body = { n: form.n, seed: form.seed, scale: form.scale, format: "png", grid: true };
    if (form.digit !== "random") body.digit = Number(form.digit);
    say(message, "Preparing the PNG grid…");
    let response;
    try {
      response = await api("/generate", { method: "POST", json: body });
    } catch (error) {
      say(message, networkError(error), "error");
      return;
    }
    if (!response.ok) {
      const problem = await explain(response);
      markInvalid(problem.fields.map((f) => GENERATE_INPUTS[f]).filter(Boolean));
      say(message, problem.text, "error");
      return;
    }
    const blob = await response.blob();
    const href = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = href;
    link.download = `digits-${form.digit}-seed-${form.seed}-n${form.n}-x${form.scale}.png`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60_000);
    say(message, `Downloaded ${link.download} (model ${response.headers.get("X-Model-Version")}).`, "ok");
  }

  // ----- retraining jobs --------------------------------------------------------------------
  function readJobParams() {
    const params = {};
    for (const input of $("job-form").querySelectorAll("input, select")) {
      const raw = input.value.trim();
      if (raw === "") continue;
      if (input.tagName === "SELECT") {
        params[input.name] = raw;
        continue;
      }
      const value = Number(raw);
      // Anything that is not a number goes as typed: the server's 422 names the field.
      params[input.name] = Number.isFinite(value) ? value : raw;
    }
    return params;
  }

  async function startJob() {
    const message = $("admin-message");
    const params = readJobParams();
    markInvalid([]);
    say(message, "Starting a retraining job…");
    let response;
    try {
      response = await api("/jobs", { method: "POST", json: params, admin: true });
    } catch (error) {
      say(message, networkError(error), "error");
      return;
    }
    if (!response.ok) {
      const problem = await explain(response);
      markInvalid(problem.fields.map((f) => `job-${f.replaceAll("_", "-")}`));
      say(message, problem.text, "error");
      if (response.status === 409) resumeActiveJob();
      return;
    }
    const job = await response.json();
    say(message, `Job ${job.id} started (${job.params.steps} steps).`, "ok");
    attach(job);
  }

  function attach(job) {
    state.job = job;
    state.samplesAt = 0;
    $("job").hidden = false;
    $("job-id").textContent = job.id;
    $("job-samples-figure").hidden = true;
    $("job-result").textContent = "";
    const progress = $("job-progress");
    progress.max = Number(job.params.steps) || 1;
    progress.value = 0;
    $("job-stats").textContent = "Waiting for the first progress report…";
    if (job.progress && job.progress.step !== undefined) showProgress(job.progress);
    showState(job.state);
    if (TERMINAL.has(job.state)) {
      closeEvents();
      showOutcome(job);
    } else {
      openEvents(job.id);
    }
  }

  function showState(jobState) {
    $("job-state").textContent = jobState;
    $("job-cancel").disabled = TERMINAL.has(jobState);
    $("job-start").disabled = !TERMINAL.has(jobState);
  }

  function openEvents(jobId) {
    closeEvents();
    const events = new EventSource(`/jobs/${jobId}/events`);
    state.events = events;
    events.addEventListener("progress", (event) => showProgress(JSON.parse(event.data)));
    events.addEventListener("state", (event) => {
      const data = JSON.parse(event.data);
      showState(data.state);
      if (TERMINAL.has(data.state)) {
        closeEvents();
        refreshJob(jobId);
      }
    });
    events.addEventListener("error", () => {
      if (state.events !== events) return;
      if (events.readyState === EventSource.CLOSED) {
        say($("admin-message"), "The live progress stream closed; showing the job's last state.", "error");
        refreshJob(jobId);
      } else {
        say($("admin-message"), "Lost the live progress stream; reconnecting…", "info");
      }
    });
  }

  function closeEvents() {
    if (state.events) state.events.close();
    state.events = null;
  }

  function showProgress(progress) {
    const step = Number(progress.step) || 0;
    const total = Number(progress.total_steps) || Number($("job-progress").max) || 1;
    const bar = $("job-progress");
    bar.max = total;
    bar.value = step;
    bar.setAttribute("aria-valuetext", `step ${step} of ${total}`);
    const parts = [`Step ${step.toLocaleString("en")} of ${total.toLocaleString("en")} (${percent(step / total)})`];
    if (progress.epoch !== undefined) parts.push(`epoch ${progress.epoch}`);
    if (typeof progress.loss_d === "number") parts.push(`loss D ${progress.loss_d.toFixed(3)}`);
    if (typeof progress.loss_g === "number") parts.push(`loss G ${progress.loss_g.toFixed(3)}`);
    if (typeof progress.images_per_s === "number") {
      parts.push(`${Math.round(progress.images_per_s).toLocaleString("en")} images/s`);
    }
    if (typeof progress.eta_s === "number") parts.push(`about ${formatDuration(progress.eta_s)} left`);
    $("job-stats").textContent = parts.join(" · ");
    refreshSamples();
  }

  // The sample grid is rewritten during training; a cache-buster fetches the newest one, at most
  // every two seconds. Until training writes the first grid the request is a 404: the figure
  // stays hidden.
  function refreshSamples() {
    const job = state.job;
    const now = Date.now();
    if (!job || now - state.samplesAt < 2000) return;
    state.samplesAt = now;
    const img = $("job-samples");
    img.onload = () => {
      $("job-samples-figure").hidden = false;
    };
    img.onerror = () => {};
    img.src = `/jobs/${job.id}/samples.png?t=${now}`;
  }

  async function refreshJob(jobId) {
    const job = await apiJson(`/jobs/${jobId}`, $("admin-message"));
    if (job === null) return;
    if (!state.job || state.job.id !== job.id) return;
    state.job = job;
    showState(job.state);
    if (TERMINAL.has(job.state)) showOutcome(job);
  }

  function showOutcome(job) {
    const result = $("job-result");
    const message = $("admin-message");
    if (job.state === "succeeded") {
      if (job.progress && job.progress.total_steps) {
        showProgress({ ...job.progress, step: job.progress.total_steps, eta_s: 0 });
      }
      const decision = job.decision || {};
      const reasons = (decision.reasons || []).join("; ");
      result.textContent =
        `New version ${job.version}: ${metricsSummary(job.metrics || {})}. ` +
        `${decision.promote ? "Promoted: it is now served." : "Not activated"}` +
        `${reasons ? ` (${reasons})` : ""}.`;
      say(message, `Job ${job.id} succeeded: version ${job.version}.`, "ok");
      loadModels();
      if (decision.promote) loadInfo().then(() => generate());
    } else if (job.state === "cancelled") {
      result.textContent = "The job was cancelled; it left no new version.";
      say(message, `Job ${job.id} cancelled.`, "ok");
    } else if (job.state === "interrupted") {
      result.textContent = "A server restart interrupted the job.";
      say(message, `Job ${job.id} was interrupted.`, "error");
    } else if (job.state === "failed") {
      result.textContent = `The job failed: ${job.error || "no reason recorded"}.`;
      say(message, `Job ${job.id} failed.`, "error");
    }
  }

  async function cancelJob() {
    const job = state.job;
    const message = $("admin-message");
    if (!job) return;
    $("job-cancel").disabled = true;
    say(message, `Cancelling job ${job.id}…`);
    const cancelled = await apiJson(`/jobs/${job.id}/cancel`, message, {
      method: "POST",
      admin: true,
    });
    if (cancelled === null) {
      $("job-cancel").disabled = false;
      return;
    }
    closeEvents();
    state.job = cancelled;
    showState(cancelled.state);
    showOutcome(cancelled);
  }

  async function resumeActiveJob() {
    let response;
    try {
      response = await api("/jobs");
    } catch {
      return;
    }
    if (!response.ok) return;
    const jobs = await response.json();
    const active = jobs.find((job) => !TERMINAL.has(job.state));
    if (active && (!state.job || state.job.id !== active.id)) attach(active);
  }

  // ----- model versions ---------------------------------------------------------------------
  async function loadModels() {
    const versions = await apiJson("/models", $("admin-message"));
    if (versions === null) return;
    const body = $("models-body");
    body.replaceChildren();
    for (const model of versions) {
      const row = document.createElement("tr");
      const name = document.createElement("td");
      name.append(Object.assign(document.createElement("code"), { textContent: model.version }));
      const created = document.createElement("td");
      created.textContent = model.created_at ? model.created_at.replace("T", " ").replace("+00:00", " UTC") : "";
      const metrics = document.createElement("td");
      metrics.textContent = metricsSummary(model.metrics || {});
      const served = document.createElement("td");
      if (model.active) {
        served.append(Object.assign(document.createElement("span"), { className: "badge", textContent: "active" }));
      } else {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = "Activate";
        button.setAttribute("aria-label", `Activate version ${model.version}`);
        button.addEventListener("click", () => activate(model.version, button));
        served.append(button);
      }
      row.append(name, created, metrics, served);
      body.append(row);
    }
  }

  async function activate(version, button) {
    const message = $("admin-message");
    button.disabled = true;
    say(message, `Activating ${version} (loading and warming it up)…`);
    const activated = await apiJson(`/models/${encodeURIComponent(version)}/activate`, message, {
      method: "POST",
      admin: true,
    });
    if (activated === null) {
      button.disabled = false;
      return;
    }
    say(message, `Version ${version} is now served.`, "ok");
    await loadInfo();
    await loadModels();
    generate();
  }

  // ----- wiring -----------------------------------------------------------------------------
  function init() {
    $("generate-form").addEventListener("submit", (event) => {
      event.preventDefault();
      generate();
    });
    $("regenerate-button").addEventListener("click", () => {
      $("seed").value = String(randomSeed());
      generate();
    });
    $("download-button").addEventListener("click", downloadGrid);
    $("token").addEventListener("input", (event) => {
      state.token = event.target.value.trim();
    });
    $("job-form").addEventListener("submit", (event) => {
      event.preventDefault();
      startJob();
    });
    $("job-cancel").addEventListener("click", cancelJob);
    $("models-refresh").addEventListener("click", loadModels);
    loadInfo().then((ok) => {
      if (ok) generate();
    });
    loadModels();
    resumeActiveJob();
  }

  init();
})();
