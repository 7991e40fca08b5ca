// A model version's metrics in words: each with a human label, its unit, and which way is
// better, for the "Active model" cards and the side-by-side comparison before an activation.
import { formatNumber, percent } from "./format.js";

const fixed = (digits) => (value) => value.toFixed(digits);
const DIGEST_CHARS = 12;

// key, label, format, which way is better (null: neither), a note shown after the value
export const METRICS = [
  ["conditional_accuracy", "Conditional accuracy", percent, "higher", ""],
  ["fid", "FID", fixed(2), "lower", "lower is better"],
  ["precision", "Precision", fixed(3), "higher", "higher is better"],
  ["recall", "Recall", fixed(3), "higher", "higher is better"],
  ["diversity", "Diversity", fixed(3), "higher", "1 = as varied as real digits"],
  ["samples", "Samples evaluated", formatNumber, null, ""],
  ["fid_real_floor", "FID floor", fixed(2), null, "real digits against real digits"],
].map(([key, label, format, better, note]) => ({ key, label, format, better, note }));

const KNOWN = new Map(METRICS.map((metric) => [metric.key, metric]));

function sentenceCase(key) {
  const words = key.replaceAll("_", " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

// A digest is for machines: a recognisable prefix, like git shows, and the whole in a tooltip.
function digestRow(key, value) {
  const name = key.replace(/_?sha256$/, "");
  return {
    key,
    label: `${name ? `${sentenceCase(name)} ` : ""}sha256`,
    value: `${String(value).slice(0, DIGEST_CHARS)}…`,
    title: String(value),
    note: "",
    digest: true,
  };
}

// One metric as shown: {key, label, value, note, title?, digest?}, or null when not shown.
export function metricRow(key, value) {
  if (key.endsWith("sha256") && typeof value === "string") return digestRow(key, value);
  if (typeof value !== "number" && typeof value !== "string") return null;
  const known = KNOWN.get(key);
  if (known && typeof value === "number") {
    return { key, label: known.label, value: known.format(value), note: known.note };
  }
  return { key, label: sentenceCase(key), value: formatNumber(value), note: "" };
}

// The rows of a version's metrics: the known ones first, in order, then any others.
export function metricRows(metrics) {
  const keys = [
    ...METRICS.map((metric) => metric.key).filter((key) => key in metrics),
    ...Object.keys(metrics).filter((key) => !KNOWN.has(key)),
  ];
  return keys.map((key) => metricRow(key, metrics[key])).filter(Boolean);
}

// "better", "worse" or "" for a candidate's value against the active one's.
export function comparedTo(key, candidate, active) {
  const better = KNOWN.get(key)?.better;
  if (!better || typeof candidate !== "number" || typeof active !== "number") return "";
  if (candidate === active) return "";
  return (candidate > active) === (better === "higher") ? "better" : "worse";
}
