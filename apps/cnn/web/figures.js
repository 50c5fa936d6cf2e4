// The tutorial's figures (convolution and max pooling, step by step), its layer stack's shapes,
// the loaded model's summary and curves, and the drawing pad.
"use strict";

// The tutorial's figures: the input with its padding, the kernel, the output filled step by step.
// Their counter starts at 0/n (nothing computed), as the tutorial's does.
class StepThrough extends Stepper {
  constructor(prefix, endpoint, request) {
    super(prefix, () => {});
    this.endpoint = endpoint;
    this.request = request;  // () -> the API request from the controls
    this.k = 0;
    this.data = null;
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
    this.n = data ? data.steps.length : 0;
    this.grid = parseGrid(this.el("image").value);
    this.el("error").textContent = error;
    // The first answer goes to the step the URL named.
    const k = this.restore ? Math.min(this.restore, this.n) : 0;
    this.restore = 0;
    this.go(k);
  }

  // The fifth click of a 4-step figure clears the outputs and returns to 0/4.
  // Without an answer (a refused configuration) there are no steps to go through.
  next() {
    if (this.data) this.go(this.k >= this.n ? 0 : this.k + 1);
  }
  key(e) {
    if (e.key === "Home") return this.go(0), true;
    if (e.key === "ArrowLeft") return this.go(Math.max(0, this.k - 1)), true;
    return super.key(e);
  }
  play() {
    if (this.timer) return this.stop();
    this.go(0);
    this.timer = setInterval(() => (!this.data || this.k >= this.n ? this.stop() : this.go(this.k + 1)), 700);
    this.label();
  }

  go(k) {
    this.k = k;
    state.figure[this.prefix] = k;
    writeUrl();
    this.el("counter").textContent = `${k}/${this.n}`;
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
    for (const s of this.data.steps) for (const tap of s.taps) {
      r0 = Math.min(r0, tap.row); c0 = Math.min(c0, tap.col); r1 = Math.max(r1, tap.row); c1 = Math.max(c1, tap.col);
    }
    const taps = new Map();
    if (step) step.taps.forEach((tap, i) => taps.set(`${tap.row},${tap.col}`, i));
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
  image: parseGrid($("conv-image").value),
  kernel: parseGrid($("conv-kernel").value),
  stride: parsePair($("conv-stride").value),
  padding: parsePair($("conv-padding").value),
  dilation: parsePair($("conv-dilation").value),
}));
const pool = new StepThrough("pool", "/api/maxpool2d/steps", () => ({
  image: parseGrid($("pool-image").value),
  kernel_size: parsePair($("pool-kernel").value),
  stride: parsePair($("pool-stride").value),
  padding: parsePair($("pool-padding").value),
  dilation: parsePair($("pool-dilation").value),
  ceil_mode: $("pool-ceil").checked,
}));


// ---- The tutorial's layer stack, editable -----------------------------------------------------
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
  const table = $("shapes-table");
  const error = $("shapes-error");
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
      const field = document.createElement("input");
      field.value = value;
      markInvalid(field, value);
      field.dataset.layer = i;
      field.dataset.key = key;
      field.addEventListener("change", () => {
        layer[key] = parsePair(field.value);
        updateShapes();
      });
      label.appendChild(field);
      opts.appendChild(label);
    }
    const row = result && result.rows[i];
    tr.insertCell().textContent = row ? `[${row.output_shape.join(", ")}]` : "";
    tr.insertCell().textContent = row ? row.params.toLocaleString("en-US") : "";
  });
  $("shapes-total").textContent = result ? `Total params: ${result.total_params.toLocaleString("en-US")}` : "";
}

// The training curves stored in the checkpoint: loss on the left, accuracy on the right.
function drawCurves(history) {
  const svg = $("model-curves");
  const W = 300, H = 180, pad = 30;
  const panel = (x0, title, series, lo, hi) => {
    const n = history.length;
    const px = (i) => x0 + pad + (n > 1 ? (i * (W - pad)) / (n - 1) : 0);
    const py = (v) => 10 + (H - 20) * (1 - (v - lo) / (hi - lo || 1));
    let out = `<text x="${x0 + pad}" y="${H + 30}" font-size="12">${title}</text>` +
              `<rect x="${x0 + pad}" y="10" width="${W - pad}" height="${H - 20}" fill="none" stroke="#ccc"/>` +
              `<text x="${x0}" y="16" font-size="10">${hi.toFixed(3)}</text><text x="${x0}" y="${H - 10}" font-size="10">${lo.toFixed(3)}</text>`;
    for (const [key, colourName] of series) {
      const points = history.map((h, i) => `${px(i)},${py(h[key])}`).join(" ");
      out += `<polyline fill="none" stroke="${colourName}" stroke-width="2" points="${points}" data-series="${key}"/>`;
      out += history.map((h, i) => `<circle cx="${px(i)}" cy="${py(h[key])}" r="3" fill="${colourName}"/>`).join("");
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
function showModel() {
  $("model-summary").textContent = model.summary;
  const [C, H, W] = model.input;
  $("model-name").textContent = t("model")(model.trained, model.dataset && model.dataset.name);
  $("model-input").textContent = `input ${C} x ${H} x ${W}`;
  const table = $("model-history");
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

// ---- The drawing pad: black strokes on white paper, as on a page; the library inverts it ------
// Paints a 0..255 image in gray (the drawing's preparation steps).
function paintGray(canvas, grid, scale) {
  const h = grid.length, w = grid[0].length;
  canvas.width = w * scale;
  canvas.height = h * scale;
  const ctx = canvas.getContext("2d");
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const v = Math.round(Math.min(255, Math.max(0, grid[y][x])));
    ctx.fillStyle = `rgb(${v},${v},${v})`;
    ctx.fillRect(x * scale, y * scale, scale, scale);
  }
}
const pad = $("draw-canvas");
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
$("draw-clear").addEventListener("click", () => {
  clearPad();
  $("draw-pred").textContent = "";
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
async function predictDrawing() {
  const error = $("draw-error");
  let result;
  try {
    result = await api("/api/predict", { pixels: padPixels() });
    error.textContent = "";
  } catch (e) {
    error.textContent = e.message;
    return;
  }
  paintGray($("draw-cropped"), result.cropped, 2);
  paintGray($("draw-scaled"), result.scaled, 4);
  paintGray($("draw-centered"), result.centered, 4);
  $("draw-pred").textContent = String(result.pred);
  const table = $("draw-probs");
  table.innerHTML = "";
  result.probs.forEach((p, i) => {
    const tr = table.insertRow();
    tr.insertCell().textContent = i;
    tr.insertCell().innerHTML = `<div class="bar" style="width:${Math.round(p * 200)}px"></div>`;
    tr.insertCell().textContent = p.toFixed(3);
  });
  $("test-info").textContent = t("drawn");
  setInput(result.centered.map((row) => row.map((v) => v / 255)), null);
}
