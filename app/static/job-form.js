// The job form as the API wants it: the shipped recipe's preset alone, or the custom fields
// that were filled in (an empty field: the server's default).
import { $ } from "./dom.js";

export const presetChosen = () =>
  document.querySelector("input[name=job-recipe]:checked")?.value === "shipped";

export function readJobParams() {
  if (presetChosen()) return { preset: "shipped" };
  const params = {};
  for (const input of $("job-custom").querySelectorAll("input, select")) {
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
