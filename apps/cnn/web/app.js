// The explorer's page. It computes nothing itself: every output, expression and shape comes
// from the library through the JSON API (cnn serve).
"use strict";

async function api(path, body) {
  const res = await fetch(path, body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const data = await res.json();
  if (!res.ok) throw new Error(data.error || res.statusText);
  return data;
}

// The page reads numbers but judges nothing: what is not a number is sent as typed, and the
// library's API refuses it with a message shown in place (JSON has no NaN; NaN would go as null).
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
// "2" -> 2, "0.5" -> 0.5; anything else ("abc", "", "0x10", "1e999") -> the text itself
function parseNumber(text) {
  const t = text.trim();
  const v = Number(t);
  return NUMBER.test(t) && Number.isFinite(v) ? v : text;
}
// "9 3 5\n6 2 3" -> [[9, 3, 5], [6, 2, 3]]; a cell that is not a number stays text; "" -> []
function parseGrid(text) {
  if (text.trim() === "") return [];
  return text.trim().split(/\n+/).map((line) => line.trim().split(/[\s,]+/).map(parseNumber));
}
// "2" -> 2, "2,3" or "2 3" -> [2, 3]; "abc", "", "2," -> the text as typed
function parsePair(text) {
  const parts = text.trim().split(/\s*,\s*|\s+/).map(parseNumber);
  if (parts.some((p) => typeof p !== "number")) return text;
  return parts.length === 1 ? parts[0] : parts;
}
// Marks a field whose text is not a number (or pair, or grid of numbers); the message is the API's.
function markInvalid(input, value) {
  const text = (v) => (Array.isArray(v) ? v.length === 0 || v.some(text) : typeof v !== "number");
  input.classList.toggle("invalid", text(value));
}
function show(value) {
  return typeof value === "number" ? String(Math.round(value * 10000) / 10000) : String(value);
}

// A step-through figure: the input with its padding, the kernel, the output filled step by step.
class StepThrough {
  constructor(prefix, endpoint, request) {
    this.prefix = prefix;
    this.endpoint = endpoint;
    this.request = request;  // () -> the API request from the controls
    this.k = 0;
    this.timer = null;
    this.data = null;
    this.el = (name) => document.getElementById(`${prefix}-${name}`);
    this.el("next").addEventListener("click", () => this.next());
    this.el("prev").addEventListener("click", () => this.go(Math.max(0, this.k - 1)));
    this.el("play").addEventListener("click", () => this.play());
    for (const input of document.querySelectorAll(`#${prefix} .controls textarea, #${prefix} .controls input`)) {
      input.addEventListener("change", () => this.load());
    }
  }

  async load() {
    this.stop();
    // Edits can overtake each other's answers: only the latest request's answer is drawn.
    const ticket = (this.ticket = (this.ticket || 0) + 1);
    for (const input of document.querySelectorAll(`#${this.prefix} .controls textarea, #${this.prefix} .controls input:not([type=checkbox])`)) {
      markInvalid(input, input.tagName === "TEXTAREA" ? parseGrid(input.value) : parsePair(input.value));
    }
    let data = null, error = "";
    try {
      data = await api(this.endpoint, this.request());
    } catch (e) {
      error = e.message;
    }
    if (ticket !== this.ticket) return;
    this.data = data;
    this.grid = parseGrid(this.el("image").value);
    this.el("error").textContent = error;
    this.go(0);
  }

  // The fifth click of a 4-step figure clears the outputs and returns to 0/4.
  // Without an answer (a refused configuration) there are no steps to go through.
  next() {
    if (this.data) this.go(this.k >= this.data.steps.length ? 0 : this.k + 1);
  }
  play() {
    if (this.timer) return this.stop();
    this.go(0);
    this.timer = setInterval(() => {
      if (!this.data || this.k >= this.data.steps.length) return this.stop();
      this.go(this.k + 1);
    }, 700);
  }
  stop() { clearInterval(this.timer); this.timer = null; }

  go(k) {
    this.k = k;
    const n = this.data ? this.data.steps.length : 0;
    this.el("counter").textContent = `${k}/${n}`;
    const step = this.data && k > 0 ? this.data.steps[k - 1] : null;
    this.el("expression").textContent = step ? step.expression : "";
    this.drawInput(step);
    if (this.prefix === "conv") this.drawKernel(step);
    this.drawOutput(k);
  }

  drawInput(step) {
    const table = this.el("input-grid");
    table.innerHTML = "";
    if (!this.data) return;
    // The area drawn: the input plus every padded cell some window touches.
    let r0 = 0, c0 = 0, r1 = this.grid.length - 1, c1 = this.grid[0].length - 1;
    for (const s of this.data.steps) for (const t of s.taps) {
      r0 = Math.min(r0, t.row); c0 = Math.min(c0, t.col); r1 = Math.max(r1, t.row); c1 = Math.max(c1, t.col);
    }
    const taps = new Map();
    if (step) step.taps.forEach((t, i) => taps.set(`${t.row},${t.col}`, i));
    for (let r = r0; r <= r1; r++) {
      const tr = table.insertRow();
      for (let c = c0; c <= c1; c++) {
        const td = tr.insertCell();
        const inside = r >= 0 && c >= 0 && r < this.grid.length && c < this.grid[0].length;
        td.textContent = inside ? show(this.grid[r][c]) : (this.prefix === "pool" ? "-inf" : "0");
        if (!inside) td.classList.add("pad");
        const i = taps.get(`${r},${c}`);
        if (i !== undefined) {
          td.classList.add("window");
          if (step.winner === i) td.classList.add("winner");
        }
        td.dataset.row = r;
        td.dataset.col = c;
      }
    }
  }

  drawKernel(step) {
    const table = this.el("kernel-grid");
    table.innerHTML = "";
    if (!this.data) return;
    const kernel = parseGrid(this.el("kernel").value);
    for (const row of kernel) {
      const tr = table.insertRow();
      for (const v of row) {
        const td = tr.insertCell();
        td.textContent = show(v);
        if (step) td.classList.add("window");
      }
    }
  }

  drawOutput(k) {
    const table = this.el("output-grid");
    table.innerHTML = "";
    if (!this.data) return;
    const out = this.data.output;
    const cols = out[0].length;
    out.forEach((row, r) => {
      const tr = table.insertRow();
      row.forEach((v, c) => {
        const td = tr.insertCell();
        const index = r * cols + c;
        td.textContent = index < k ? show(v) : "";
        if (index === k - 1) td.classList.add("current");
      });
    });
  }
}

const conv = new StepThrough("conv", "/api/conv2d/steps", () => ({
  image: parseGrid(document.getElementById("conv-image").value),
  kernel: parseGrid(document.getElementById("conv-kernel").value),
  stride: parsePair(document.getElementById("conv-stride").value),
  padding: parsePair(document.getElementById("conv-padding").value),
  dilation: parsePair(document.getElementById("conv-dilation").value),
}));
const pool = new StepThrough("pool", "/api/maxpool2d/steps", () => ({
  image: parseGrid(document.getElementById("pool-image").value),
  kernel_size: parsePair(document.getElementById("pool-kernel").value),
  stride: parsePair(document.getElementById("pool-stride").value),
  padding: parsePair(document.getElementById("pool-padding").value),
  dilation: parsePair(document.getElementById("pool-dilation").value),
  ceil_mode: document.getElementById("pool-ceil").checked,
}));

// The tutorial's model, layer by layer, editable.
const layers = [
  { type: "Conv2d", out_channels: 16, kernel_size: 3, stride: 1, padding: 0, dilation: 1 },
  { type: "ReLU" },
  { type: "MaxPool2d", kernel_size: 2, stride: 2, padding: 1 },
  { type: "Conv2d", out_channels: 32, kernel_size: 3, stride: 1, padding: 0, dilation: 1 },
  { type: "ReLU" },
  { type: "MaxPool2d", kernel_size: 2, stride: 2, padding: 1 },
  { type: "Flatten" },
  { type: "Linear", out_features: 32 },
  { type: "ReLU" },
  { type: "Dropout", p: 0.3 },
  { type: "Linear", out_features: 10 },
];

let shapesTicket = 0;
async function updateShapes() {
  const table = document.getElementById("shapes-table");
  const error = document.getElementById("shapes-error");
  const ticket = ++shapesTicket;
  let result = null, message = "";
  try {
    result = await api("/api/shapes", { input: [1, 28, 28], layers });
  } catch (e) {
    message = e.message;  // the library's own message; the page keeps working
  }
  if (ticket !== shapesTicket) return;
  error.textContent = message;
  table.innerHTML = "<tr><th>layer</th><th>options</th><th>output shape</th><th>params</th></tr>";
  layers.forEach((layer, i) => {
    const tr = table.insertRow();
    tr.insertCell().textContent = `${layer.type}-${i + 1}`;
    const opts = tr.insertCell();
    for (const [key, value] of Object.entries(layer)) {
      if (key === "type") continue;
      const label = document.createElement("label");
      label.textContent = ` ${key} `;
      const input = document.createElement("input");
      input.value = value;
      markInvalid(input, value);
      input.dataset.layer = i;
      input.dataset.key = key;
      input.addEventListener("change", () => {
        layer[key] = parsePair(input.value);
        updateShapes();
      });
      label.appendChild(input);
      opts.appendChild(label);
    }
    const row = result && result.rows[i];
    tr.insertCell().textContent = row ? `[${row.output_shape.join(", ")}]` : "";
    tr.insertCell().textContent = row ? row.params.toLocaleString("en-US") : "";
  });
  document.getElementById("shapes-total").textContent =
    result ? `Total params: ${result.total_params.toLocaleString("en-US")}` : "";
}

// The training curves stored in the checkpoint: loss on the left, accuracy on the right.
function drawCurves(history) {
  const svg = document.getElementById("model-curves");
  const W = 300, H = 180, pad = 30;
  const panel = (x0, title, series, lo, hi) => {
    const n = history.length;
    const px = (i) => x0 + pad + (n > 1 ? (i * (W - pad)) / (n - 1) : 0);
    const py = (v) => 10 + (H - 20) * (1 - (v - lo) / (hi - lo || 1));
    let out = `<text x="${x0 + pad}" y="${H + 30}" font-size="12">${title}</text>` +
              `<rect x="${x0 + pad}" y="10" width="${W - pad}" height="${H - 20}" fill="none" stroke="#ccc"/>` +
              `<text x="${x0}" y="16" font-size="10">${hi.toFixed(3)}</text><text x="${x0}" y="${H - 10}" font-size="10">${lo.toFixed(3)}</text>`;
    for (const [key, color] of series) {
      const points = history.map((h, i) => `${px(i)},${py(h[key])}`).join(" ");
      out += `<polyline fill="none" stroke="${color}" stroke-width="2" points="${points}" data-series="${key}"/>`;
      out += history.map((h, i) => `<circle cx="${px(i)}" cy="${py(h[key])}" r="3" fill="${color}"/>`).join("");
    }
    return out;
  };
  const losses = history.flatMap((h) => [h.train_loss, h.test_loss]);
  const accs = history.flatMap((h) => [h.train_accuracy, h.test_accuracy]);
  // The held-out figures are the test set's, or a validation split's (cnn train --val-split).
  const held = heldOutName(history);
  svg.innerHTML =
    panel(0, `loss: train (blue), ${held} (orange)`, [["train_loss", "#1976d2"], ["test_loss", "#e65100"]], 0, Math.max(...losses)) +
    panel(330, `accuracy: train (blue), ${held} (orange)`, [["train_accuracy", "#1976d2"], ["test_accuracy", "#e65100"]],
          Math.min(...accs), 1);
}

function heldOutName(history) {
  return history.length && history[0].held_out === "validation" ? "validation" : "test";
}

async function loadModel() {
  const model = await api("/api/model");
  document.getElementById("model-summary").textContent = model.summary;
  const table = document.getElementById("model-history");
  if (!model.history.length) return;
  drawCurves(model.history);
  const held = heldOutName(model.history);
  table.innerHTML = `<tr><th>epoch</th><th>train loss</th><th>train acc</th><th>${held} loss</th><th>${held} acc</th></tr>`;
  for (const h of model.history) {
    const tr = table.insertRow();
    for (const v of [h.epoch, h.train_loss.toFixed(5), h.train_accuracy.toFixed(4), h.test_loss.toFixed(5), h.test_accuracy.toFixed(4)]) {
      tr.insertCell().textContent = v;
    }
  }
}

// Paints a 2-D array into a canvas, scaled, each value mapped to gray between the array's own
// minimum and maximum (as matplotlib's imshow does).
function paint(canvas, grid, scale, range) {
  const h = grid.length, w = grid[0].length;
  canvas.width = w * scale;
  canvas.height = h * scale;
  const ctx = canvas.getContext("2d");
  const flat = grid.flat();
  const lo = range ? range[0] : Math.min(...flat), hi = range ? range[1] : Math.max(...flat);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const t = hi > lo ? (grid[y][x] - lo) / (hi - lo) : 0;
    const v = Math.round(255 * t);
    ctx.fillStyle = `rgb(${v},${v},${v})`;
    ctx.fillRect(x * scale, y * scale, scale, scale);
  }
}

// The drawing pad: black strokes on white paper, as on a page; the library inverts it.
const pad = document.getElementById("draw-canvas");
const padCtx = pad.getContext("2d");
function clearPad() {
  padCtx.fillStyle = "#fff";
  padCtx.fillRect(0, 0, pad.width, pad.height);
}
clearPad();
let drawing = false;
pad.addEventListener("pointerdown", (e) => {
  drawing = true;
  padCtx.beginPath();
  padCtx.moveTo(e.offsetX, e.offsetY);
});
pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  padCtx.lineWidth = 16;
  padCtx.lineCap = "round";
  padCtx.lineJoin = "round";
  padCtx.strokeStyle = "#000";
  padCtx.lineTo(e.offsetX, e.offsetY);
  padCtx.stroke();
});
window.addEventListener("pointerup", () => {
  if (!drawing) return;
  drawing = false;
  predictDrawing();
});
document.getElementById("draw-clear").addEventListener("click", () => {
  clearPad();
  document.getElementById("draw-pred").textContent = "";
});

// The pad at half resolution (112 x 112), gray 0..255.
function padPixels() {
  const data = padCtx.getImageData(0, 0, pad.width, pad.height).data;
  const out = [];
  for (let y = 0; y < pad.height; y += 2) {
    const row = [];
    for (let x = 0; x < pad.width; x += 2) {
      let sum = 0;
      for (const [dy, dx] of [[0, 0], [0, 1], [1, 0], [1, 1]]) sum += data[((y + dy) * pad.width + x + dx) * 4];
      row.push(Math.round(sum / 4));
    }
    out.push(row);
  }
  return out;
}

let insideInput = null;
async function predictDrawing() {
  const error = document.getElementById("draw-error");
  let result;
  try {
    result = await api("/api/predict", { pixels: padPixels() });
    error.textContent = "";
  } catch (e) {
    error.textContent = e.message;
    return;
  }
  paint(document.getElementById("draw-cropped"), result.cropped, 2, [0, 255]);
  paint(document.getElementById("draw-scaled"), result.scaled, 4, [0, 255]);
  paint(document.getElementById("draw-centered"), result.centered, 4, [0, 255]);
  document.getElementById("draw-pred").textContent = String(result.pred);
  const table = document.getElementById("draw-probs");
  table.innerHTML = "";
  result.probs.forEach((p, i) => {
    const tr = table.insertRow();
    tr.insertCell().textContent = i;
    const bar = tr.insertCell();
    bar.innerHTML = `<div class="bar" style="width:${Math.round(p * 200)}px"></div>`;
    tr.insertCell().textContent = p.toFixed(3);
  });
  insideInput = result.centered.map((row) => row.map((v) => v / 255));
  showInside();
}

document.getElementById("test-show").addEventListener("click", async () => {
  const info = document.getElementById("test-info");
  try {
    const input = document.getElementById("test-index");
    const index = parseNumber(input.value);
    markInvalid(input, index);
    const t = await api("/api/test-image", { index });
    info.textContent = `test #${t.index}: label ${t.label}, predicted ${t.pred}`;
    info.classList.remove("error");
    insideInput = t.pixels;
    showInside();
  } catch (e) {
    info.textContent = e.message;
    info.classList.add("error");
  }
});

// Empties a step panel and returns line(text, id, className), which appends one line to it.
function panelWriter(panel) {
  panel.innerHTML = "";
  return (text, id, cls) => {
    const p = document.createElement("div");
    p.textContent = text;
    if (id) p.id = id;
    if (cls) p.className = cls;
    panel.appendChild(p);
  };
}

// The magnification that draws a map about `target` pixels wide (the tutorial's 26x26 conv1
// maps 3 times, 14x14 maps 4 times, 7x7 maps 8 times, 3x3 filters 12 times).
function scaleFor(grid, target) {
  return Math.max(1, Math.floor(target / Math.max(grid.length, grid[0].length)));
}
// "16 x 14 x 14"
function dims(maps) {
  return `${maps.length} x ${maps[0].length} x ${maps[0][0].length}`;
}

async function showInside() {
  // The maps and their clicks belong to this input, even if a newer drawing replaces it meanwhile.
  const input = insideInput;
  paint(document.getElementById("inside-input"), input, 4, [0, 1]);
  const section = document.getElementById("inside");
  section.dataset.state = "loading";
  let inside;
  try {
    inside = await api("/api/inside", { pixels: input });
  } catch (e) {
    // A model this view cannot show: the API says what it needs and what the model has.
    if (input !== insideInput) return;
    document.getElementById("inside-error").textContent = e.message;
    section.dataset.state = "error";
    return;
  }
  if (input !== insideInput) return;
  document.getElementById("inside-error").textContent = "";
  // The headings say what this model's stages are (the tutorial's: Conv2d, ReLU, MaxPool2d).
  const after = (stage) => stage.slice(1).join(", ");
  const [stage1, stage2] = inside.stages;
  const { conv1: name1, conv2: name2 } = inside.names;
  document.getElementById("inside-conv1-title").textContent =
    `conv1 (${name1}) outputs (${dims(inside.conv1)}` + (stage1.length > 1 ? `, before ${after(stage1)})` : ")");
  document.getElementById("inside-pool1-title").textContent =
    `conv1 feature maps` + (stage1.length > 1 ? ` after ${after(stage1)}` : "") + ` (${dims(inside.conv1_pooled)})`;
  document.getElementById("inside-pool2-title").textContent =
    `conv2 (${name2}) feature maps` + (stage2.length > 1 ? ` after ${after(stage2)}` : "") +
    ` (${dims(inside.conv2_pooled)})`;
  document.getElementById("inside-filters-title").textContent =
    `conv1 filters (${dims(inside.conv1_filters)}) and conv2 filters of input channel 0 (${dims(inside.conv2_filters)})`;
  document.getElementById("inside-conv2-inputs").textContent = String(inside.conv1_pooled.length);
  const maps = (id, list, target, onclick) => {
    const box = document.getElementById(id);
    box.innerHTML = "";
    list.forEach((grid, c) => {
      const canvas = document.createElement("canvas");
      const scale = scaleFor(grid, target);
      paint(canvas, grid, scale);
      canvas.dataset.channel = c;
      if (onclick) canvas.addEventListener("click", (e) => onclick(c, e, scale, grid));
      box.appendChild(canvas);
    });
  };
  maps("inside-conv1", inside.conv1, 78, async (c, e, scale, grid) => {
    const row = Math.floor(e.offsetY / scale), col = Math.floor(e.offsetX / scale);
    const panel = document.getElementById("inside-step");
    const line = panelWriter(panel);
    let step;
    try {
      step = await api("/api/inside/step", { pixels: input, channel: c, row, col });
    } catch (err) {
      line(err.message, null, "error");
      return;
    }
    line(`conv1 map ${c}, output (${row}, ${col}): window rows ${step.taps[0].row}..${step.taps.at(-1).row}, ` +
         `cols ${step.taps[0].col}..${step.taps.at(-1).col}`);
    line(step.expression, "inside-step-expression");
    line(`step-through value ${step.value}; the map's pixel ${grid[row][col]}`, "inside-step-values");
    panel.dataset.value = step.value;
    panel.dataset.pixel = grid[row][col];
  });
  maps("inside-pool1", inside.conv1_pooled, 56);
  maps("inside-pool2", inside.conv2_pooled, 56, async (c, e, scale, grid) => {
    const row = Math.floor(e.offsetY / scale), col = Math.floor(e.offsetX / scale);
    const panel = document.getElementById("inside-step2");
    const line = panelWriter(panel);
    let d;
    try {
      d = await api("/api/inside/conv2-step", { pixels: input, channel: c, row, col });
    } catch (err) {
      line(err.message, null, "error");
      return;
    }
    const relu = d.relu ? Math.max(0, d.pre_activation) : d.pre_activation;
    const filters = inside.conv2_filters[0];
    const kernel = `${filters.length} x ${filters[0].length}`;
    const n = d.channels.length;
    line(`conv2 map ${c}, ${d.pooled ? "pooled " : ""}output (${row}, ${col}): the largest ` +
         `${d.relu ? "ReLU'd " : ""}conv2 output in its window, ` + d.pool.expression, "inside-step2-pool");
    line(`the winner, conv2's output (${d.winner.row}, ${d.winner.col}), is the sum over the ${n} ` +
         `conv1 feature maps of their ${kernel} window times filter ${c}'s slice for that map, plus the bias:`);
    for (const ch of d.channels) line(`map ${ch.channel}: ${ch.expression}`, null, "inside-step2-channel");
    const partials = d.channels.map((ch) => show(ch.value)).join(" + ");
    line(`${partials} + ${show(d.bias)} = ${show(d.sum)}`, "inside-step2-sum");
    line(`conv2 computed ${show(d.pre_activation)} (the ${n} sums added in another order)` +
         (d.relu ? `; after ReLU ${show(relu)}` : "") + (d.pooled ? `; pooled ${show(d.pool.value)}` : "") +
         `; the map's pixel ${show(grid[row][col])}`, "inside-step2-values");
    panel.dataset.value = d.pool.value;
    panel.dataset.pixel = grid[row][col];
    panel.dataset.sum = d.sum;
    panel.dataset.pre = d.pre_activation;
  });
  maps("inside-filters1", inside.conv1_filters, 36);
  maps("inside-filters2", inside.conv2_filters, 36);
  section.dataset.state = "ready";
}

conv.load();
pool.load();
updateShapes();
loadModel();
