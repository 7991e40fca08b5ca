// Small DOM helpers shared by the page's panels.

export const $ = (id) => document.getElementById(id);

// A new element with the given properties, e.g. make("dd", { textContent: "0.97" }).
export function make(tag, properties = {}) {
  return Object.assign(document.createElement(tag), properties);
}

// Shows `text` in a message line (role="status"); `kind` is "info", "ok" or "error". An empty
// text clears the line.
export function say(element, text, kind = "info") {
  element.textContent = text;
  element.className = text ? `message ${kind}` : "message";
}

// Marks exactly these inputs (by id) as invalid, and no others.
export function markInvalid(inputIds) {
  for (const input of document.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
  }
  for (const id of inputIds) $(id)?.setAttribute("aria-invalid", "true");
}

// Saves `blob` as the file `filename`, as a download link would.
export function saveBlob(blob, filename) {
  const href = URL.createObjectURL(blob);
  const link = make("a", { href, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
}
