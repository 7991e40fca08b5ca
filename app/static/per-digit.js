// A version's metrics digit by digit: `metrics.per_digit`, a list of {digit, accuracy, fid} the
// evaluation writes into the manifest (older versions have none), as a compact table of digit,
// accuracy and FID; and, for the comparison before an activation, both versions side by side.
import { make } from "./dom.js";
import { percent } from "./format.js";
import { comparedTo } from "./metrics.js";

const MISSING = "—";
const accuracyText = (value) => (typeof value === "number" ? percent(value) : MISSING);
const fidText = (value) => (typeof value === "number" ? value.toFixed(2) : MISSING);

// The entries of `metrics.per_digit` by digit (0 to 9, each once), or null when there are none.
export function perDigitEntries(metrics) {
  const list = metrics ? metrics.per_digit : null;
  if (!Array.isArray(list)) return null;
  const byDigit = new Map();
  for (const entry of list) {
    const digit = entry && typeof entry === "object" ? entry.digit : null;
    if (Number.isInteger(digit) && digit >= 0 && digit <= 9 && !byDigit.has(digit)) {
      byDigit.set(digit, entry);
    }
  }
  if (byDigit.size === 0) return null;
  return new Map([...byDigit].sort(([a], [b]) => a - b));
}

function headerRow(labels) {
  const row = make("tr");
  row.append(...labels.map((label) => make("th", { scope: "col", textContent: label })));
  const head = make("thead");
  head.append(row);
  return head;
}

function table(captionText, labels, rows) {
  const element = make("table", { className: "per-digit" });
  element.append(make("caption", { textContent: captionText }), headerRow(labels));
  const body = make("tbody");
  body.append(...rows);
  element.append(body);
  return element;
}

function digitRow(digit, cells) {
  const row = make("tr");
  row.append(make("th", { scope: "row", textContent: String(digit) }), ...cells);
  return row;
}

// One version's table (digit, accuracy, FID), or null when its metrics have no per_digit.
export function perDigitTable(metrics, captionText = "Per digit") {
  const entries = perDigitEntries(metrics);
  if (entries === null) return null;
  const rows = [...entries].map(([digit, entry]) =>
    digitRow(digit, [
      make("td", { textContent: accuracyText(entry.accuracy) }),
      make("td", { textContent: fidText(entry.fid) }),
    ]),
  );
  return table(captionText, ["Digit", "Accuracy", "FID"], rows);
}

// A candidate's cell, marked better or worse than the served version's value.
function comparedCell(text, key, candidate, active) {
  const cell = make("td", { textContent: text });
  const verdict = comparedTo(key, candidate, active);
  if (verdict) {
    cell.classList.add(verdict);
    cell.title = `${verdict} than the served version`;
  }
  return cell;
}

// Both versions digit by digit: accuracy and FID of the candidate beside the served one's; null
// when neither has per_digit.
export function perDigitComparison(candidateMetrics, activeMetrics) {
  const candidate = perDigitEntries(candidateMetrics);
  const active = perDigitEntries(activeMetrics);
  if (candidate === null && active === null) return null;
  const digits = new Set([...(candidate?.keys() || []), ...(active?.keys() || [])]);
  const rows = [...digits].sort((a, b) => a - b).map((digit) => {
    const mine = candidate?.get(digit) || {};
    const theirs = active?.get(digit) || {};
    return digitRow(digit, [
      comparedCell(
        accuracyText(mine.accuracy),
        "conditional_accuracy",
        mine.accuracy,
        theirs.accuracy,
      ),
      make("td", { textContent: accuracyText(theirs.accuracy) }),
      comparedCell(fidText(mine.fid), "fid", mine.fid, theirs.fid),
      make("td", { textContent: fidText(theirs.fid) }),
    ]);
  });
  const labels = ["Digit", "Accuracy", "Accuracy (served)", "FID", "FID (served)"];
  return table("Per digit: the version to activate beside the served one", labels, rows);
}

// Puts `element` (a table, or null: nothing) into `container`, hidden when there is nothing.
export function showIn(container, element) {
  container.replaceChildren(...(element ? [element] : []));
  container.hidden = element === null;
}
