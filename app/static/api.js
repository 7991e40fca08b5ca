// Every request the page makes, in one place: the same-origin API calls, the fetch-and-report
// helper most of them use (apiJson), how a failed response is put into words (explain), and the
// URLs the page hands to <img> and EventSource.
import { say } from "./dom.js";
import { describeField, fieldName } from "./format.js";
import { state } from "./state.js";

const ADMIN_POST = { method: "POST", admin: true };

async function request(path, { method = "GET", json, admin = false, signal } = {}) {
  const headers = {};
  if (json !== undefined) headers["Content-Type"] = "application/json";
  if (admin && state.token) headers.Authorization = `Bearer ${state.token}`;
  const body = json === undefined ? undefined : JSON.stringify(json);
  return fetch(path, { method, headers, body, signal });
}

// ----- failures in words ------------------------------------------------------------------
async function readDetail(response) {
  try {
    return (await response.json()).detail;
  } catch {
    return null;
  }
}

// A 422's errors as one sentence; the fields they blame are pushed onto `fields`.
function validationText(detail, fields) {
  const parts = detail.map((error) => {
    const name = fieldName(error.loc);
    fields.push(name);
    return `${describeField(name)}: ${error.msg}`;
  });
  return `Please correct ${parts.join("; ")}.`;
}

function busyText(response, detail) {
  const retry = response.headers.get("Retry-After");
  const wait = retry ? `Try again in ${retry} s (Retry-After: ${retry}).` : "Try again shortly.";
  return `The server is busy: ${detail || "service unavailable"}. ${wait}`;
}

function unauthorizedText(detail) {
  return (
    `The admin token was not accepted (${detail || "unauthorized"}). ` +
    "Type the token the server was started with (GAN_ADMIN_TOKEN) in “Admin token”."
  );
}

function disabledText(detail) {
  return (
    "Administration is disabled on this server: " +
    `${detail || "no admin token is configured"}.`
  );
}

function otherText(response, detail) {
  const what = typeof detail === "string" ? detail : response.statusText;
  return `Request failed (HTTP ${response.status}): ${what || "no details"}.`;
}

// A failed response as one sentence for people, plus the API fields it blames.
export async function explain(response) {
  const detail = await readDetail(response);
  const status = response.status;
  const fields = [];
  let text;
  if (status === 422 && Array.isArray(detail)) text = validationText(detail, fields);
  else if (status === 503) text = busyText(response, detail);
  else if (status === 401) text = unauthorizedText(detail);
  else if (status === 403) text = disabledText(detail);
  else text = otherText(response, detail);
  return { text, fields, status, detail };
}

export function networkError(error) {
  return `Cannot reach the server (${error.message || error}). Is it running?`;
}

// An API call whose failure the page reports in `message`: the parsed JSON body, or null
// once the network error or the server's explanation has been said.
export async function apiJson(path, message, options) {
  let response;
  try {
    response = await request(path, options);
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

// ----- calls reported through apiJson: a JSON body, or null once the failure is said ----------
export const getInfo = (message) => apiJson("/info", message);

export const listModels = (message) => apiJson("/models", message);

export const compareModel = (version, message) =>
  apiJson(`/models/${encodeURIComponent(version)}/compare`, message);

export const getJob = (jobId, message) => apiJson(`/jobs/${jobId}`, message);

export const cancelJob = (jobId, message) => apiJson(`/jobs/${jobId}/cancel`, message, ADMIN_POST);

// ----- calls whose callers read the Response themselves (a PNG body, the fields a 422 blames,
// a 409, a failure kept quiet); each rejects on a network error ------------------------------
export const postGenerate = (body) => request("/generate", { method: "POST", json: body });

export const postJob = (params) => request("/jobs", { method: "POST", json: params, admin: true });

export const listJobs = () => request("/jobs");

export const getHistory = (jobId) => request(`/jobs/${jobId}/history`);

// params: the job's parameters as POST /jobs takes them (or {preset}); the server times them
export const postEstimate = (params) =>
  request("/jobs/estimate", { method: "POST", json: params, admin: true });

// force: serve it even though it fails a quality gate (only ever on the person's confirmation)
export const activateModel = (version, force) =>
  request(`/models/${encodeURIComponent(version)}/activate`, {
    method: "POST",
    json: { force },
    admin: true,
  });

export const postRestore = (body) => request("/restore", { method: "POST", json: body });

// A streamed zip: the caller reads the body as it arrives.
export const postDataset = (body, signal) =>
  request("/datasets", { method: "POST", json: body, signal });

// An <img> cannot read its error; the same URL, fetched, tells the status and the reason.
export const refetchImage = (url) => fetch(url, { cache: "no-store" });

// ----- URLs for <img> and EventSource -----------------------------------------------------
// truncation is part of the image's identity: a URL without it is the untruncated image (1).
export function digitImageUrl(digit, seed, scale, truncation = 1) {
  const params = new URLSearchParams({ seed: String(seed), scale: String(scale) });
  if (truncation !== 1) params.set("truncation", String(truncation));
  if (state.version) params.set("version", state.version);
  return `/digits/${digit}.png?${params}`;
}

export const jobSamplesUrl = (jobId, cacheBuster) => `/jobs/${jobId}/samples.png?t=${cacheBuster}`;

export const jobEvents = (jobId) => new EventSource(`/jobs/${jobId}/events`);
