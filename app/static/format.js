// Numbers, durations, metrics and API field names as the page writes them.

// API field names as the form calls them, so that a 422 names what the person typed.
const FIELD_LABELS = {
  digit: "Digit",
  n: "How many",
  seed: "Seed",
  scale: "Scale",
  truncation: "Truncation",
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
  precision: "Precision",
  eval_per_digit: "Evaluation samples per digit",
  preset: "Recipe",
  digits: "Digits",
  per_digit: "Images per digit",
  format: "Format",
  version: "Model version",
  image: "The digit",
  mask: "The damage",
};

export function percent(value) {
  return `${(value * 100).toFixed(1)} %`;
}

export function formatNumber(value) {
  if (typeof value !== "number") return String(value);
  return Number.isInteger(value) ? value.toLocaleString("en") : value.toPrecision(4);
}

// Bytes in decimal units, e.g. "1.2 MB".
export function formatBytes(bytes) {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

// A model's metrics in one line, for the versions table and a job's outcome.
export function metricsSummary(metrics) {
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

// The API field a validation error's `loc` points at, without where it came from ("body", ...).
export function fieldName(loc) {
  const parts = (loc || []).filter((p) => !["body", "query", "path", "header"].includes(p));
  return parts.length ? parts.join(".") : (loc || []).join(".");
}

// "How many (n)": the form's label and the API's name of a field.
export function describeField(name) {
  const label = FIELD_LABELS[name];
  return label ? `${label} (${name})` : name;
}
