// The loss chart of a retraining job: loss D and loss G over the steps, drawn by the page itself
// on a <canvas> (no library) from GET /jobs/{id}/history and the live progress events.
import { $ } from "./dom.js";

const SERIES = [
  { key: "loss_d", name: "loss D", color: "#0b5cad" },
  { key: "loss_g", name: "loss G", color: "#c2410c" },
];
const PAD = { left: 48, right: 12, top: 10, bottom: 26 };
const HEIGHT = 220;
const chart = { points: new Map(), total: 1, frame: 0 };

// A new, empty chart for a job of `totalSteps` steps.
export function resetChart(totalSteps) {
  chart.points.clear();
  chart.total = Math.max(1, Number(totalSteps) || 1);
  redraw();
}

// Adds progress reports ({step, loss_d, loss_g, ...}); a step seen twice is kept once.
export function addPoints(reports) {
  for (const report of reports) {
    if (typeof report.step === "number" && SERIES.some((s) => typeof report[s.key] === "number")) {
      chart.points.set(report.step, report);
    }
  }
  redraw();
}

function redraw() {
  cancelAnimationFrame(chart.frame);
  chart.frame = requestAnimationFrame(draw);
}

function sortedPoints() {
  return [...chart.points.values()].sort((a, b) => a.step - b.step);
}

// The canvas at its CSS width, in device pixels; the context draws in CSS pixels.
function context(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(160, canvas.clientWidth);
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(HEIGHT * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { ctx, width, height: HEIGHT };
}

function yRange(points) {
  const values = points.flatMap((p) => SERIES.map((s) => p[s.key])).filter(Number.isFinite);
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (!Number.isFinite(low)) return [0, 1];
  if (high - low < 1e-6) [low, high] = [low - 0.5, high + 0.5];
  const margin = (high - low) * 0.05;
  return [low - margin, high + margin];
}

function draw() {
  const canvas = $("job-chart");
  if (!canvas || canvas.offsetParent === null) return;
  const { ctx, width, height } = context(canvas);
  const points = sortedPoints();
  const last = points.length ? points[points.length - 1].step : 0;
  const scale = {
    x0: PAD.left,
    x1: width - PAD.right,
    y0: height - PAD.bottom,
    y1: PAD.top,
    steps: Math.max(chart.total, last, 1),
    range: yRange(points),
  };
  ctx.clearRect(0, 0, width, height);
  drawAxes(ctx, scale);
  for (const series of SERIES) drawLine(ctx, scale, points, series);
  describe(canvas, points);
}

const xOf = (scale, step) => scale.x0 + (step / scale.steps) * (scale.x1 - scale.x0);

function yOf(scale, value) {
  const [low, high] = scale.range;
  return scale.y0 - ((value - low) / (high - low)) * (scale.y0 - scale.y1);
}

function drawAxes(ctx, scale) {
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#57606a";
  ctx.strokeStyle = "#d0d7de";
  ctx.lineWidth = 1;
  const [low, high] = scale.range;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i += 1) {
    const value = low + ((high - low) * i) / 4;
    const y = yOf(scale, value);
    ctx.beginPath();
    ctx.moveTo(scale.x0, y);
    ctx.lineTo(scale.x1, y);
    ctx.stroke();
    ctx.fillText(value.toFixed(2), scale.x0 - 6, y);
  }
  ctx.textBaseline = "top";
  ctx.textAlign = "left";
  ctx.fillText("step 0", scale.x0, scale.y0 + 8);
  ctx.textAlign = "right";
  ctx.fillText(`${scale.steps.toLocaleString("en")}`, scale.x1, scale.y0 + 8);
}

function drawLine(ctx, scale, points, series) {
  const usable = points.filter((p) => Number.isFinite(p[series.key]));
  if (usable.length === 0) return;
  ctx.strokeStyle = series.color;
  ctx.fillStyle = series.color;
  ctx.lineWidth = 2;
  ctx.beginPath();
  usable.forEach((p, i) => {
    const [x, y] = [xOf(scale, p.step), yOf(scale, p[series.key])];
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
  if (usable.length === 1) {
    ctx.beginPath();
    ctx.arc(xOf(scale, usable[0].step), yOf(scale, usable[0][series.key]), 3, 0, 2 * Math.PI);
    ctx.fill();
  }
}

// The chart in words, for screen readers (and the number of points, for tests).
function describe(canvas, points) {
  canvas.dataset.points = String(points.length);
  if (points.length === 0) {
    canvas.setAttribute("aria-label", "Loss chart: no progress reported yet");
    return;
  }
  const latest = points[points.length - 1];
  const values = SERIES.filter((s) => Number.isFinite(latest[s.key]))
    .map((s) => `${s.name} ${latest[s.key].toFixed(3)}`)
    .join(", ");
  canvas.setAttribute(
    "aria-label",
    `Loss chart: ${points.length} reports up to step ${latest.step.toLocaleString("en")}; ` +
      `latest ${values}`,
  );
}

export function initChart() {
  window.addEventListener("resize", redraw);
}
