// The explorer's page. It computes nothing itself: every output, range, gradient, expression and
// shape comes from the library through the JSON API (cnn serve); the page lays them out.
"use strict";

const $ = (id) => document.getElementById(id);

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
// The toy figures' numbers: 4 decimals at most.
function show(value) {
  return typeof value === "number" ? String(Math.round(value * 10000) / 10000) : String(value);
}
// A model's number as the API sent it: a float, "inf"/"-inf", or null (NaN). Four significant
// digits for reading; the exact value is in the element's data attributes and the "all terms" list.
function fmt(v) {
  if (v === null) return "NaN";
  if (typeof v === "string") return v === "inf" ? "∞" : v === "-inf" ? "−∞" : v;
  if (v === 0) return "0";
  const a = Math.abs(v);
  const s = a >= 1e-3 && a < 1e5 ? String(Number(v.toPrecision(4))) : v.toExponential(2);
  return s.replace("-", "−");
}
// Every digit float32 carries (the API's JSON has 9 significant digits at most).
const exact = (v) => (v === null ? "NaN" : String(v));

// The language of the prose and labels (the tutorial is Korean): English or Korean, in the URL.
const ui = {
  en: {
    input: "input", channel: "channel", step: "step", value: "value", library: "the library's value",
    sum: "sum", bias: "bias", more: (n) => `… ${n} more terms …`, window: "window", kernel: "kernel",
    products: "products", winner: "winner", divisor: "divisor", padding: "padding",
    upstream: "upstream gradient dy", read: "input values read", train: { none: "no run yet", running: "running",
      paused: "paused", done: "done", failed: "failed" },
    pause: "pause", resume: "resume", play: "play", stop: "pause",
  },
  ko: {
    input: "입력", channel: "채널", step: "단계", value: "값", library: "라이브러리의 값",
    sum: "합", bias: "bias", more: (n) => `… 항 ${n}개 더 …`, window: "윈도", kernel: "커널",
    products: "곱", winner: "최댓값", divisor: "나누는 수", padding: "padding",
    upstream: "상류 기울기 dy", read: "읽은 입력 값", train: { none: "아직 없음", running: "학습 중",
      paused: "일시정지", done: "완료", failed: "실패" },
    pause: "일시정지", resume: "계속", play: "재생", stop: "일시정지",
  },
};
const t = (key) => ui[state.lang][key];

// ---- State in the URL: every widget's settings, so a view can be shared or reloaded ----------
const state = {
  lang: "en", test: 0, scale: "layer", sel: null, k: 1, cls: null, of: "score", glayer: "",
  bw: { layer: "", out: 0, in: 0, row: 0, col: 0, k: 1 }, figure: { conv: 0, pool: 0 },
};
// The figures' and the training run's fields, kept in the URL when they differ from the page's
// defaults; and the figures' steps.
const URL_FIELDS = ["conv-image", "conv-kernel", "conv-stride", "conv-padding", "conv-dilation", "pool-image",
                    "pool-kernel", "pool-stride", "pool-padding", "pool-dilation", "pool-ceil", "train-steps",
                    "train-lr", "train-batch", "train-optimizer", "train-pace"];
const fieldValue = (el) => (el.type === "checkbox" ? (el.checked ? "1" : "0") : el.value);
const fieldDefault = (el) => (el.type === "checkbox" ? (el.defaultChecked ? "1" : "0")
  : el.tagName === "SELECT" ? el.options[0].value : el.defaultValue);
function readUrl() {
  const q = new URLSearchParams(location.search);
  for (const id of URL_FIELDS) {
    const el = $(id);
    if (!q.has(id)) continue;
    if (el.type === "checkbox") el.checked = q.get(id) === "1";
    else el.value = q.get(id);
  }
  for (const name of ["conv", "pool"]) if (/^\d+$/.test(q.get(`${name}k`) || "")) state.figure[name] = Number(q.get(`${name}k`));
  if (q.get("lang") === "ko") state.lang = "ko";
  if (/^\d+$/.test(q.get("test") || "")) state.test = Number(q.get("test"));
  if (["map", "layer", "network"].includes(q.get("scale"))) state.scale = q.get("scale");
  const sel = (q.get("sel") || "").split(",");
  if (sel.length === 4 && sel.slice(1).every((s) => /^\d+$/.test(s))) {
    state.sel = { path: sel[0], channel: +sel[1], row: +sel[2], col: +sel[3] };
  }
  if (/^\d+$/.test(q.get("k") || "")) state.k = Number(q.get("k"));
  if (/^\d+$/.test(q.get("class") || "")) state.cls = Number(q.get("class"));
  if (["score", "loss"].includes(q.get("of"))) state.of = q.get("of");
  state.glayer = q.get("glayer") || "";
  const bw = (q.get("bw") || "").split(",");
  if (bw.length === 6 && bw.slice(1).every((s) => /^\d+$/.test(s))) {
    state.bw = { layer: bw[0], out: +bw[1], in: +bw[2], row: +bw[3], col: +bw[4], k: +bw[5] };
  }
}
function writeUrl() {
  const q = new URLSearchParams();
  if (state.lang !== "en") q.set("lang", state.lang);
  q.set("test", state.test);
  q.set("scale", state.scale);
  if (state.sel) q.set("sel", [state.sel.path, state.sel.channel, state.sel.row, state.sel.col].join(","));
  if (state.sel) q.set("k", state.k);
  if (state.cls !== null) q.set("class", state.cls);
  q.set("of", state.of);
  if (state.glayer) q.set("glayer", state.glayer);
  if (state.bw.layer) {
    const b = state.bw;
    q.set("bw", [b.layer, b.out, b.in, b.row, b.col, b.k].join(","));
  }
  for (const id of URL_FIELDS) {
    const el = $(id);
    if (fieldValue(el) !== fieldDefault(el)) q.set(id, fieldValue(el));
  }
  for (const name of ["conv", "pool"]) if (state.figure[name]) q.set(`${name}k`, state.figure[name]);
  history.replaceState(null, "", `${location.pathname}?${q.toString().replace(/%2C/g, ",")}${location.hash}`);
}

function setLang(lang) {
  state.lang = lang;
  document.body.className = lang;
  document.documentElement.lang = lang;
  for (const b of document.querySelectorAll(".lang button")) b.classList.toggle("on", b.dataset.lang === lang);
  for (const s of steppers) s.label();
  train.label();
  writeUrl();
}

// ---- Colour: one perceptual map (viridis, as `cnn visualize` draws), with a visible scale ----
// Matplotlib's viridis at 0, 0.1, ..., 1, interpolated linearly between.
const VIRIDIS = ["#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c", "#22a884", "#44bf70",
                 "#7ad151", "#bddf26", "#fde725"].map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));
function viridis(x) {
  const u = Math.min(1, Math.max(0, x)) * 10, i = Math.min(9, Math.floor(u)), f = u - i;
  return VIRIDIS[i].map((c, j) => Math.round(c + (VIRIDIS[i + 1][j] - c) * f));
}
const NAN_COLOUR = [200, 200, 200];
// A value's colour on the range [lo, hi]; an infinity is the end of the scale, NaN gray.
function colour(v, lo, hi) {
  if (v === null) return NAN_COLOUR;
  if (v === "inf") return viridis(1);
  if (v === "-inf") return viridis(0);
  return viridis(hi > lo ? (v - lo) / (hi - lo) : 0.5);
}
// Paints a 2-D grid into a canvas, `scale` pixels per value; marks one cell and/or a rectangle.
function paintGrid(canvas, grid, scale, lo, hi, marks = {}) {
  const h = grid.length, w = grid[0].length;
  canvas.width = w * scale;
  canvas.height = h * scale;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const [r, g, b] = colour(grid[y][x], lo, hi);
    const o = (y * w + x) * 4;
    img.data[o] = r; img.data[o + 1] = g; img.data[o + 2] = b; img.data[o + 3] = 255;
  }
  // Drawn at one pixel per value, then scaled without smoothing.
  const small = document.createElement("canvas");
  small.width = w; small.height = h;
  small.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, 0, 0, w * scale, h * scale);
  const box = (r0, c0, r1, c1, colourName, width) => {
    ctx.lineWidth = width;
    ctx.strokeStyle = colourName;
    ctx.strokeRect(c0 * scale + width / 2, r0 * scale + width / 2,
                   (c1 - c0 + 1) * scale - width, (r1 - r0 + 1) * scale - width);
  };
  if (marks.rect) {
    const [r0, c0, r1, c1] = marks.rect;
    box(Math.max(0, r0), Math.max(0, c0), Math.min(h - 1, r1), Math.min(w - 1, c1), "#ff3d7f", Math.max(2, scale / 4));
  }
  if (marks.cell) {
    const [r, c] = marks.cell;
    box(r, c, r, c, "#fff", Math.max(2, scale / 3));
    if (scale >= 6) box(r, c, r, c, "#ff3d7f", Math.max(1, scale / 8));
  }
}
// The cell under a click on a painted canvas (its CSS size may differ from its pixel size).
function cellAt(canvas, e, grid) {
  const r = canvas.getBoundingClientRect();
  const row = Math.floor(((e.clientY - r.top) / r.height) * grid.length);
  const col = Math.floor(((e.clientX - r.left) / r.width) * grid[0].length);
  return [Math.min(grid.length - 1, Math.max(0, row)), Math.min(grid[0].length - 1, Math.max(0, col))];
}
// The magnification that draws a map about `target` pixels wide.
function scaleFor(h, w, target) {
  return Math.max(1, Math.floor(target / Math.max(h, w)));
}
// A colour scale: the ramp with its two ends and, when inside, where zero is.
function scaleBar(el, lo, hi, label) {
  el.innerHTML = "";
  if (lo === null || hi === null || lo === undefined) return;
  const ramp = document.createElement("canvas");
  ramp.className = "ramp";
  ramp.width = 140; ramp.height = 10;
  const ctx = ramp.getContext("2d");
  for (let x = 0; x < 140; x++) {
    const [r, g, b] = viridis(x / 139);
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(x, 0, 1, 10);
  }
  if (lo < 0 && hi > 0) {
    ctx.fillStyle = "#fff";
    ctx.fillRect(Math.round((-lo / (hi - lo)) * 139), 0, 1, 10);
  }
  const span = (text) => { const s = document.createElement("span"); s.textContent = text; return s; };
  if (label) el.append(span(label));
  el.append(span(fmt(lo)), ramp, span(fmt(hi)));
  if (lo < 0 && hi > 0) el.append(span("(white tick: 0)"));
}

// ---- Steppers: the step-through widgets; keyboard goes to the one used last -------------------
const steppers = [];
let activeStepper = null;
class Stepper {
  // el(name): the widget's elements by suffix; render(k): draws step k of n (k from 1).
  constructor(prefix, render) {
    this.prefix = prefix;
    this.render = render;
    this.k = 1;
    this.n = 0;
    this.timer = null;
    this.el = (name) => $(`${prefix}-${name}`);
    this.el("next").addEventListener("click", () => this.next());
    this.el("prev").addEventListener("click", () => this.go(Math.max(1, this.k - 1)));
    this.el("play").addEventListener("click", () => this.play());
    this.section().addEventListener("pointerdown", () => { activeStepper = this; });
    steppers.push(this);
  }
  section() { return this.el("next").closest("section"); }
  reset(n, k = 1) { this.stop(); this.n = n; this.go(Math.min(Math.max(1, k), Math.max(1, n))); }
  next() { if (this.n) this.go(this.k >= this.n ? 1 : this.k + 1); }
  go(k) {
    this.k = k;
    this.el("counter").textContent = this.n ? `${k}/${this.n}` : "";
    if (this.n) this.render(k);
  }
  key(e) {
    if (e.key === "ArrowRight") this.next();
    else if (e.key === "ArrowLeft") this.go(Math.max(1, this.k - 1));
    else if (e.key === "Home") this.go(1);
    else if (e.key === "End") this.go(Math.max(1, this.n));
    else if (e.key === " ") this.play();
    else return false;
    return true;
  }
  play() {
    if (this.timer) return this.stop();
    if (this.k >= this.n) this.go(1);
    this.timer = setInterval(() => (this.k >= this.n ? this.stop() : this.go(this.k + 1)), 700);
    this.label();
  }
  stop() { clearInterval(this.timer); this.timer = null; this.label(); }
  label() { this.el("play").textContent = this.timer ? t("stop") : t("play"); }
}

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

// A grid of numbers as a table; cls(r, c) gives a cell's classes.
function numberTable(grid, caption, cls = () => [], small = false) {
  const table = document.createElement("table");
  table.className = small ? "grid small" : "grid";
  grid.forEach((row, r) => {
    const tr = table.insertRow();
    row.forEach((v, c) => {
      const td = tr.insertCell();
      td.textContent = fmt(v);
      td.title = exact(v);
      for (const k of cls(r, c)) td.classList.add(k);
    });
  });
  if (caption) table.createCaption().textContent = caption;
  return table;
}
function titled(title, node) {
  const box = document.createElement("div");
  const h = document.createElement("h4");
  h.textContent = title;
  box.append(h, node);
  return box;
}
// "a + b + c + … + z = sum": at most `shown` terms written, the rest folded into a count.
function formula(el, terms, result, joiner = " + ", shown = 4) {
  el.innerHTML = "";
  const add = (text, cls) => {
    const s = document.createElement("span");
    s.textContent = text;
    if (cls) s.className = cls;
    el.append(s);
  };
  const list = terms.length <= shown ? terms : [...terms.slice(0, shown - 1), null, terms.at(-1)];
  list.forEach((term, i) => {
    if (i) add(joiner);
    if (term === null) add(t("more")(terms.length - shown + 1), "fold");
    else add(i && joiner === " + " && term.startsWith("−") ? `(${term})` : term, "term");
  });
  add(" = ");
  add(result, "result");
}
// "0.3744×(−0.1822)": a negative second factor in parentheses.
function product(a, b) {
  const f = fmt(b);
  return `${fmt(a)}×${f.startsWith("−") ? `(${f})` : f}`;
}
function termList(el, lines) {
  el.innerHTML = "";
  for (const line of lines) {
    const d = document.createElement("div");
    d.textContent = line;
    el.append(d);
  }
}

// ---- The network: every layer's maps for the current input -----------------------------------
let model = null;       // GET /api/model
let input = null;       // the current input: [C][H][W] in [0, 1]
let inputLabel = null;  // a test image's label
let net = null;         // POST /api/network for it
let netTicket = 0;

const isGrid = (m) => Array.isArray(m) && Array.isArray(m[0]);
const classNames = () => (model && model.dataset && model.dataset.class_names) || [];
// What an input channel is called: R, G, B for a colour image.
const channelName = (c, C) => (C === 3 ? "RGB"[c] : `c${c}`);

// The range a map of layer L is painted on, at the chosen scale level.
function rangeOf(layer, c) {
  const r = state.scale === "map" && layer.map_ranges ? layer.map_ranges[c]
    : state.scale === "network" && layer.maps && isGrid(layer.maps[0]) && net.range ? net.range : layer.range;
  return r && r.min !== null ? [r.min, r.max] : [0, 1];
}

// The input as a pseudo-layer, drawn first; the network's range does not include it.
function inputLayer() {
  const C = input.length;
  return { path: "input", type: "input", output_shape: [C, input[0].length, input[0][0].length], maps: input,
           range: { min: 0, max: 1 }, map_ranges: input.map(() => ({ min: 0, max: 1 })), channels_shown: C };
}

async function loadNetwork() {
  const ticket = ++netTicket;
  const list = $("net-layers");
  list.dataset.state = "loading";
  let data;
  try {
    data = await api("/api/network", { pixels: input });
  } catch (e) {
    if (ticket !== netTicket) return;
    $("net-error").textContent = e.message;
    list.dataset.state = "error";
    return;
  }
  if (ticket !== netTicket) return;
  $("net-error").textContent = "";
  net = data;
  drawNetwork();
  list.dataset.state = "ready";
  fillLayerSelects();
  if (state.sel && layerIndex(state.sel.path) >= -1) openDetail(state.sel, state.k);
  loadGradient();
  loadBackward();
  if (train.status && train.status.state !== "none") train.refreshMaps();
}
const layerIndex = (path) => (path === "input" ? -1 : net.layers.findIndex((l) => l.path === path));

function drawNetwork() {
  const list = $("net-layers");
  const section = $("detail");
  section.hidden = true;
  document.querySelector("main").insertBefore(section, $("grad"));
  list.innerHTML = "";
  const C = input.length;
  $("net-input-caption").textContent = `${t("input")} ${C} x ${input[0].length} x ${input[0][0].length}`;
  paintInputPreview($("net-input"));
  [inputLayer(), ...net.layers].forEach((layer) => list.append(layerCard(layer)));
  drawOutput();
}
// The input image as seen: gray, or the three channels as one colour image.
function paintInputPreview(canvas) {
  const C = input.length, h = input[0].length, w = input[0][0].length;
  const scale = scaleFor(h, w, 112);
  canvas.width = w * scale;
  canvas.height = h * scale;
  const ctx = canvas.getContext("2d");
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const v = (c) => Math.round(255 * Math.min(1, Math.max(0, input[C === 3 ? c : 0][y][x])));
    ctx.fillStyle = `rgb(${v(0)},${v(1)},${v(2)})`;
    ctx.fillRect(x * scale, y * scale, scale, scale);
  }
}

function layerCard(layer) {
  const card = document.createElement("div");
  card.className = layer.output_shape.length === 3 ? "layer" : "layer vector-layer";
  card.dataset.path = layer.path;
  card.dataset.type = layer.type;
  const head = document.createElement("div");
  head.className = "layer-head";
  const span = (cls, text) => { const s = document.createElement("span"); s.className = cls; s.textContent = text; return s; };
  head.append(span("path", layer.path), span("type", layer.type === "input" ? t("input") : layer.type),
              span("shape", layer.output_shape.join(" x ")));
  if (layer.range && layer.range.min !== null) head.append(span("range", `[${fmt(layer.range.min)}, ${fmt(layer.range.max)}]`));
  if (layer.layer) head.append(span("printed", layer.layer));
  card.append(head);
  const maps = document.createElement("div");
  maps.className = "maps";
  card.append(maps);
  const bar = document.createElement("div");
  bar.className = "scalebar";
  card.append(bar);
  if (layer.maps && isGrid(layer.maps[0])) {
    const [Cn, h, w] = layer.output_shape;
    const scale = scaleFor(h, w, h <= 8 ? 48 : 64);
    layer.maps.forEach((grid, c) => {
      const box = document.createElement("div");
      box.className = "mapbox";
      const canvas = document.createElement("canvas");
      canvas.className = "map";
      canvas.dataset.channel = c;
      const [lo, hi] = rangeOf(layer, c);
      const sel = state.sel && state.sel.path === layer.path && state.sel.channel === c ? state.sel : null;
      paintGrid(canvas, grid, scale, lo, hi, sel ? { cell: [sel.row, sel.col] } : {});
      if (sel) canvas.classList.add("chosen");
      canvas.title = `${layer.path} ${t("channel")} ${c}: [${fmt(lo)}, ${fmt(hi)}]`;
      canvas.addEventListener("click", (e) => {
        const [row, col] = cellAt(canvas, e, grid);
        openDetail({ path: layer.path, channel: c, row, col }, 1);
      });
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = layer.path === "input" ? channelName(c, Cn) : `c${c}`;
      box.append(canvas, label);
      maps.append(box);
    });
    if (layer.maps.length < Cn) maps.append(span("more", `+${Cn - layer.maps.length} channels not sent`));
    if (state.scale === "map") scaleBar(bar, 0, 1, "each map: its min → max");
    else scaleBar(bar, ...rangeOf(layer, 0), state.scale === "network" && layer.path !== "input" ? "network" : "layer");
  } else if (layer.maps) {
    // A vector (Flatten, Linear...): one cell per value, wrapped.
    const values = layer.maps;
    const cols = Math.min(values.length, values.length <= 64 ? 64 : 196);
    const rows = Math.ceil(values.length / cols);
    const grid = [];
    for (let r = 0; r < rows; r++) grid.push(values.slice(r * cols, (r + 1) * cols).concat(Array(Math.max(0, (r + 1) * cols - values.length)).fill(null)).slice(0, cols));
    const canvas = document.createElement("canvas");
    canvas.className = "map vector";
    const [lo, hi] = rangeOf(layer, 0);
    paintGrid(canvas, grid, values.length <= 64 ? 12 : 4, lo, hi);
    const readout = span("readout", "");
    canvas.addEventListener("click", (e) => {
      const [r, c] = cellAt(canvas, e, grid);
      const i = r * cols + c;
      if (i < values.length) readout.textContent = `${layer.path}[${i}] = ${exact(values[i])}`;
    });
    maps.append(canvas);
    card.append(readout);
    scaleBar(bar, lo, hi, "layer");
  }
  card.addEventListener("click", () => showProse(layer));
  return card;
}

// The softmax at the end: one bar per class, the prediction marked.
function drawOutput() {
  const box = $("net-output");
  box.innerHTML = "";
  if (!net.probabilities) return;
  const names = classNames();
  const h = document.createElement("h4");
  h.textContent = `softmax → prediction: ${names[net.prediction] ?? net.prediction}` +
    (inputLabel !== null ? ` (label ${names[inputLabel] ?? inputLabel})` : "");
  h.id = "net-prediction";
  box.append(h);
  const table = document.createElement("table");
  net.probabilities.forEach((p, i) => {
    const tr = table.insertRow();
    if (i === net.prediction) tr.className = "pred";
    tr.insertCell().textContent = names[i] ?? i;
    const cell = tr.insertCell();
    cell.className = "barcell";
    cell.innerHTML = `<div class="bar" style="width:${((p ?? 0) * 100).toFixed(1)}%"></div>`;
    tr.insertCell().textContent = p === null ? "NaN" : p.toFixed(4);
    tr.insertCell().textContent = `logit ${fmt(net.logits[i])}`;
  });
  box.append(table);
}

// ---- Prose beside the detail view, by the layer's kind, in the tutorial's order --------------
const PROSE = {
  Conv2d: {
    en: "Convolution: the kernel of this output channel slides over the layer's input; at each position it multiplies the window by the kernel, channel by channel, adds everything and the bias. Stride, padding and dilation decide where the windows fall.",
    ko: "합성곱: 이 출력 채널의 커널이 층의 입력 위를 움직이며, 각 위치에서 윈도와 커널을 채널마다 곱해 모두 더하고 bias를 더합니다. stride, padding, dilation이 윈도의 위치를 정합니다.",
  },
  MaxPool2d: {
    en: "Max pooling: the output is the largest value in its window of the input; padding is minus infinity and never wins.",
    ko: "최대 풀링: 출력은 입력 윈도 안의 가장 큰 값입니다. padding은 음의 무한대라 선택되지 않습니다.",
  },
  AvgPool2d: {
    en: "Average pooling: the output is the window's sum divided by its size (whether padding counts is the layer's count_include_pad).",
    ko: "평균 풀링: 출력은 윈도의 합을 크기로 나눈 값입니다(padding을 셀지는 count_include_pad가 정합니다).",
  },
  AdaptiveAvgPool2d: {
    en: "Adaptive average pooling: the windows are chosen so that the output has the asked size; each output is its window's mean.",
    ko: "적응형 평균 풀링: 출력이 정한 크기가 되도록 윈도를 나누고, 각 출력은 윈도의 평균입니다.",
  },
  ReLU: { en: "ReLU(x) = max(0, x): negative values become 0.", ko: "ReLU(x) = max(0, x): 음수는 0이 됩니다." },
  SiLU: { en: "SiLU(x) = x · sigmoid(x): a smooth ReLU; small negative values stay slightly negative.", ko: "SiLU(x) = x · sigmoid(x): 부드러운 ReLU로, 작은 음수는 약간 음수로 남습니다." },
  BatchNorm2d: {
    en: "Batch normalisation (at inference): each channel is shifted and scaled by its running mean and variance, then by its learned weight and bias.",
    ko: "배치 정규화(추론 시): 채널마다 누적 평균과 분산으로 옮기고 크기를 맞춘 뒤, 학습된 weight와 bias를 적용합니다.",
  },
  Flatten: { en: "Flatten: the maps laid out as one vector.", ko: "Flatten: 맵들을 하나의 벡터로 펼칩니다." },
  Linear: { en: "Linear: a weight matrix times the vector, plus a bias.", ko: "Linear: 가중치 행렬 곱하기 벡터, 더하기 bias." },
  Dropout: { en: "Dropout: during training it zeroes random values; here, at inference, it passes everything through.", ko: "Dropout: 학습 중에는 무작위로 값을 0으로 만들고, 추론인 여기서는 그대로 통과시킵니다." },
  input: { en: "The input image, values in [0, 1].", ko: "입력 이미지, 값은 [0, 1]." },
};
function showProse(layer) {
  const p = PROSE[layer.type];
  const el = $("detail-prose");
  el.innerHTML = "";
  if (!p) return;
  for (const lang of ["en", "ko"]) {
    const s = document.createElement("span");
    s.lang = lang;
    s.textContent = p[lang];
    el.append(s);
  }
}

// ---- The detail view: one output of a layer taken apart by the library -----------------------
let detail = null;  // {sel, layer, step}
const detailStepper = new Stepper("detail", (k) => renderDetail(k));

async function openDetail(sel, k) {
  const i = layerIndex(sel.path);
  if (i < -1) return;
  const layer = i === -1 ? inputLayer() : net.layers[i];
  state.sel = sel;
  state.k = k;
  for (const card of document.querySelectorAll(".layer")) card.classList.toggle("selected", card.dataset.path === sel.path);
  redrawMarks();
  const section = $("detail");
  section.hidden = false;
  // The detail opens under the layer it takes apart.
  const card = document.querySelector(`.layer[data-path="${CSS.escape(sel.path)}"]`);
  if (card && card.nextElementSibling !== section) card.after(section);
  showProse(layer);
  const grid = layer.maps[sel.channel];
  const pixel = grid ? grid[sel.row][sel.col] : undefined;
  $("detail-where").textContent = `${sel.path} (${layer.type}), ${t("channel")} ${sel.channel}, (${sel.row}, ${sel.col}) = ${exact(pixel)}`;
  Object.assign(section.dataset, { pixel: exact(pixel), path: sel.path, channel: sel.channel, row: sel.row, col: sel.col });
  activeStepper = detailStepper;
  delete section.dataset.value;
  let step = null;
  if (layer.drill) {
    try {
      step = await api("/api/layer/step", { pixels: input, layer: sel.path, channel: sel.channel, row: sel.row, col: sel.col });
      $("detail-check").textContent = "";
    } catch (e) {
      $("detail-check").textContent = e.message;
    }
  } else {
    $("detail-check").textContent = layer.type === "input" ? "" :
      (state.lang === "ko" ? "이 층의 값 하나하나는 위의 설명대로 계산됩니다. 단계별 보기는 합성곱과 풀링 층에 있습니다."
                           : "Each value of this layer is computed as described above; the step-by-step view covers convolution and pooling layers.");
  }
  if (state.sel !== sel) return;  // a newer click
  detail = { sel, layer, index: i, step, pixel };
  const n = !step ? 0 : step.type === "Conv2d" ? step.inputs.length + 1 : 1;
  $("detail-buttons").hidden = n <= 1;
  for (const id of ["detail-grids", "detail-formula", "detail-terms"]) $(id).innerHTML = "";
  $("detail-all").hidden = !step;
  drawDetailMaps(null);
  if (step) {
    section.dataset.value = exact(step.value);
    section.dataset.total = exact(step.total);
    detailStepper.reset(n, k);
  } else {
    detailStepper.reset(0);
  }
  writeUrl();
}

// The overview's maps with the chosen pixel marked.
function redrawMarks() {
  for (const card of document.querySelectorAll(".layer")) {
    const i = layerIndex(card.dataset.path);
    const layer = i === -1 ? inputLayer() : net.layers[i];
    if (!layer.maps || !isGrid(layer.maps[0])) continue;
    for (const canvas of card.querySelectorAll("canvas.map")) {
      const c = Number(canvas.dataset.channel);
      const sel = state.sel && state.sel.path === layer.path && state.sel.channel === c ? state.sel : null;
      const was = canvas.classList.contains("chosen");
      if (!sel && !was) continue;
      const grid = layer.maps[c];
      const scale = canvas.width / grid[0].length;
      paintGrid(canvas, grid, scale, ...rangeOf(layer, c), sel ? { cell: [sel.row, sel.col] } : {});
      canvas.classList.toggle("chosen", !!sel);
    }
  }
}

// The layer's input channel with the window outlined, and the output map with the pixel marked.
function drawDetailMaps(inChannel) {
  const { sel, layer, index, step } = detail;
  const out = layer.maps[sel.channel];
  const h = out.length, w = out[0].length;
  paintGrid($("detail-out"), out, scaleFor(h, w, 168), ...rangeOf(layer, sel.channel), { cell: [sel.row, sel.col] });
  $("detail-out-caption").textContent = `${sel.path} ${t("channel")} ${sel.channel}`;
  const source = index <= 0 ? inputLayer() : net.layers[index - 1];
  const c = inChannel ?? (step && step.inputs ? step.inputs[0].channel : sel.channel);
  const show = step && source.maps && isGrid(source.maps[0]) && source.maps[c];
  $("detail-in").hidden = !show;
  $("detail-in-caption").textContent = show ? `${t("input")}: ${source.path} ${t("channel")} ${c}` : "";
  if (!show) return;
  const grid = source.maps[c];
  const rect = [step.rows[0], step.cols[0], step.rows.at(-1), step.cols.at(-1)];
  paintGrid($("detail-in"), grid, scaleFor(grid.length, grid[0].length, 168), ...rangeOf(source, c), { rect });
}

function renderDetail(k) {
  const { step, sel } = detail;
  if (!step) return;
  state.k = k;
  writeUrl();
  const grids = $("detail-grids");
  grids.innerHTML = "";
  const padded = (r, c) => (step.padded && step.padded[r][c] ? ["pad"] : []);
  const section = $("detail");
  section.dataset.k = k;
  if (step.type === "Conv2d") {
    const n = step.inputs.length;
    if (k <= n) {
      const inp = step.inputs[k - 1];
      drawDetailMaps(inp.channel);
      grids.append(titled(`${t("window")}: ${t("input")} ${t("channel")} ${inp.channel}`, numberTable(inp.window, "", (r, c) => ["window", ...padded(r, c)])),
                   titled(`${t("kernel")} w[${sel.channel}, ${k - 1}]`, numberTable(inp.kernel, "")),
                   titled(t("products"), numberTable(inp.products, "")));
      const terms = [], all = [];
      inp.window.forEach((row, r) => row.forEach((x, c) => {
        terms.push(product(x, inp.kernel[r][c]));
        all.push(`x[${step.rows[r]}, ${step.cols[c]}] ${exact(x)} × w[${r}, ${c}] ${exact(inp.kernel[r][c])} = ${exact(inp.products[r][c])}` +
                 (step.padded && step.padded[r][c] ? `  (${t("padding")})` : ""));
      }));
      formula($("detail-formula"), terms, fmt(inp.sum));
      termList($("detail-terms"), all);
      $("detail-check").textContent = `${t("channel")} ${inp.channel}: ${t("sum")} ${exact(inp.sum)}`;
    } else {
      drawDetailMaps(null);
      const sums = step.inputs.map((inp) => [`${t("channel")} ${inp.channel}`, inp.sum]);
      if (step.bias !== null) sums.push([t("bias"), step.bias]);
      grids.append(titled(t("sum"), numberTable(sums.map(([, v]) => [v]), "")));
      formula($("detail-formula"), sums.map(([, v]) => fmt(v)), fmt(step.total));
      termList($("detail-terms"), sums.map(([name, v]) => `${name}: ${exact(v)}`));
      checkLine($("detail-check"), step.total, step.value);
    }
  } else if (step.type === "MaxPool2d") {
    drawDetailMaps(sel.channel);
    const win = step.winner;
    grids.append(titled(t("window"), numberTable(step.window, "", (r, c) => {
      const cls = ["window", ...padded(r, c)];
      if (win && win.kernel_row === r && win.kernel_col === c) cls.push("winner");
      return cls;
    })));
    const terms = step.window.flat().map(fmt);
    formula($("detail-formula"), [`max(${terms.join(", ")})`], fmt(step.total), "", 99);
    termList($("detail-terms"), step.window.flat().map((v, i) => `${exact(v)}`));
    checkLine($("detail-check"), step.total, step.value);
  } else {
    drawDetailMaps(sel.channel);
    grids.append(titled(t("window"), numberTable(step.window, "", (r, c) => ["window", ...padded(r, c)])));
    const terms = step.window.flat().map(fmt);
    const el = $("detail-formula");
    formula(el, terms, fmt(step.sum));
    const tail = document.createElement("span");
    tail.textContent = `;  ${fmt(step.sum)} / ${step.divisor} = `;
    const res = document.createElement("span");
    res.className = "result";
    res.textContent = fmt(step.total);
    el.append(tail, res);
    termList($("detail-terms"), step.window.flat().map((v) => exact(v)));
    checkLine($("detail-check"), step.total, step.value);
  }
}
// "written out: 6.65241814; the library's value: 6.65241766 ✓" (equal up to the summation order)
function checkLine(el, total, value) {
  el.innerHTML = "";
  const s = document.createElement("span");
  s.textContent = `${t("sum")} ${exact(total)}; ${t("library")} ${exact(value)} `;
  const ok = document.createElement("span");
  ok.className = "ok";
  const close = typeof total === "number" && typeof value === "number" &&
    Math.abs(total - value) <= 1e-5 * (1 + Math.abs(value));
  ok.textContent = total === value ? "✓ equal" : close ? "✓ equal up to float32 rounding" : "";
  el.append(s, ok);
}

// ---- Gradients: saliency and a layer's maps --------------------------------------------------
let grad = null;
let gradTicket = 0;
function fillLayerSelects() {
  const fill = (select, layers, want) => {
    select.innerHTML = "";
    for (const l of layers) {
      const o = document.createElement("option");
      o.value = l.path;
      o.textContent = `${l.path} (${l.type})`;
      select.append(o);
    }
    if (layers.some((l) => l.path === want)) select.value = want;
    return select.value;
  };
  const fourD = net.layers.filter((l) => l.output_shape.length === 3);
  state.glayer = fill($("grad-layer"), fourD, state.glayer || (fourD[0] && fourD[0].path));
  state.bw.layer = fill($("bw-layer"), net.layers.filter((l) => l.type === "Conv2d"), state.bw.layer);
  // The classes, once per model.
  const box = $("grad-classes");
  const names = classNames();
  const n = net.logits ? net.logits.length : 0;
  if (box.children.length !== n) {
    box.innerHTML = "";
    for (let i = 0; i < n; i++) {
      const b = document.createElement("button");
      b.textContent = names[i] ?? i;
      b.dataset.cls = i;
      b.addEventListener("click", () => { state.cls = i; loadGradient(); loadBackward(); });
      box.append(b);
    }
  }
}
function chosenClass() {
  return state.cls !== null && net.logits && state.cls < net.logits.length ? state.cls : net.prediction;
}
async function loadGradient() {
  if (!net || !net.logits) return;
  const ticket = ++gradTicket;
  const cls = chosenClass();
  for (const b of $("grad-classes").children) b.classList.toggle("on", Number(b.dataset.cls) === cls);
  for (const b of $("grad-of").children) b.classList.toggle("on", b.dataset.of === state.of);
  writeUrl();
  let g;
  try {
    g = await api("/api/gradient", { pixels: input, class: cls, of: state.of, layer: state.glayer || undefined });
    $("grad-error").textContent = "";
  } catch (e) {
    if (ticket === gradTicket) $("grad-error").textContent = e.message;
    return;
  }
  if (ticket !== gradTicket) return;
  grad = g;
  const what = state.of === "score" ? `score${cls}` : `loss(${cls})`;
  $("grad-input-caption").textContent = `∂ ${what} / ∂ ${t("input")}  (${what} = ${fmt(g.objective)})`;
  const [lo, hi] = [g.input_range.min, g.input_range.max];
  drawGradMaps($("grad-input"), g.input_gradient, lo, hi, 160, (c, r, col, v) => {
    $("grad-readout").textContent = `∂ ${what} / ∂ x[${c}, ${r}, ${col}] = ${exact(v)}`;
    Object.assign($("grad-readout").dataset, { channel: c, row: r, col, value: exact(v) });
  });
  scaleBar($("grad-input-scale"), lo, hi);
  $("grad-layer-caption").textContent = g.layer ? `∂ ${what} / ∂ ${g.layer}` : "";
  $("grad-layer-maps").innerHTML = "";
  if (g.layer_gradient) {
    const lr = g.layer_range || { min: 0, max: 0 };
    drawGradMaps($("grad-layer-maps"), g.layer_gradient, lr.min, lr.max, 64, (c, r, col, v) => {
      $("grad-layer-readout").textContent = `∂ ${what} / ∂ ${g.layer}[${c}, ${r}, ${col}] = ${exact(v)}`;
      Object.assign($("grad-layer-readout").dataset, { channel: c, row: r, col, value: exact(v) });
    });
    scaleBar($("grad-layer-scale"), lr.min, lr.max);
  }
  $("grad").dataset.state = "ready";
}
function drawGradMaps(box, maps, lo, hi, target, onpick) {
  box.innerHTML = "";
  maps.forEach((grid, c) => {
    const wrap = document.createElement("div");
    wrap.className = "mapbox";
    const canvas = document.createElement("canvas");
    canvas.className = "map";
    canvas.dataset.channel = c;
    const scale = scaleFor(grid.length, grid[0].length, target);
    paintGrid(canvas, grid, scale, lo, hi);
    canvas.addEventListener("click", (e) => {
      const [r, col] = cellAt(canvas, e, grid);
      paintGrid(canvas, grid, scale, lo, hi, { cell: [r, col] });
      onpick(c, r, col, grid[r][col]);
    });
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = `c${c}`;
    wrap.append(canvas, label);
    box.append(wrap);
  });
}
for (const b of $("grad-of").children) b.addEventListener("click", () => { state.of = b.dataset.of; loadGradient(); loadBackward(); });
$("grad-layer").addEventListener("change", () => { state.glayer = $("grad-layer").value; loadGradient(); });

// ---- Backprop: one convolution weight's gradient, row by row of the output -------------------
let bw = null;
let bwTicket = 0;
const bwStepper = new Stepper("bw", (k) => renderBackward(k));
async function loadBackward() {
  if (!net || !state.bw.layer) return;
  const ticket = ++bwTicket;
  const b = state.bw;
  for (const [id, key] of [["bw-out", "out"], ["bw-in", "in"], ["bw-row", "row"], ["bw-col", "col"]]) $(id).value = b[key];
  const request = { pixels: input, layer: b.layer, out_channel: b.out, in_channel: b.in, row: b.row, col: b.col,
                    class: chosenClass() };
  let d;
  try {
    d = await api("/api/layer/dw-step", request);
    $("bw-error").textContent = "";
  } catch (e) {
    if (ticket !== bwTicket) return;
    $("bw-error").textContent = e.message;
    bw = null;
    bwStepper.reset(0);
    for (const id of ["bw-grids", "bw-formula", "bw-terms", "bw-check"]) $(id).innerHTML = "";
    return;
  }
  if (ticket !== bwTicket) return;
  bw = d;
  const section = $("backward");
  section.dataset.value = exact(d.value);
  section.dataset.total = exact(d.total);
  const names = classNames();
  $("bw-objective").textContent =
    `${d.of === "loss" ? "cross-entropy loss, target" : "score of class"} ${names[d.class] ?? d.class} = ${fmt(d.objective)}; ` +
    `dw[${d.weight.join(", ")}] of ${d.layer} reads ${t("input")} ${t("channel")} ${d.input_channel}`;
  bwStepper.reset(d.output_shape[0] + 1, b.k);
}
function renderBackward(k) {
  const d = bw;
  state.bw.k = k;
  writeUrl();
  const [OH, OW] = d.output_shape;
  const grids = $("bw-grids");
  grids.innerHTML = "";
  const rowSums = d.products.map((row) => row.reduce((a, v) => a + (typeof v === "number" ? v : 0), 0));
  const current = k <= OH ? k - 1 : -1;
  const cls = (r) => (r === current ? ["window"] : []);
  if (OH * OW <= 144) {
    const padded = (r, c) => (d.padded && d.padded[r][c] ? ["pad"] : []);
    grids.append(titled(t("read"), numberTable(d.window, "", (r, c) => [...cls(r), ...padded(r, c)], true)),
                 titled(t("upstream"), numberTable(d.upstream, "", cls, true)),
                 titled(t("products"), numberTable(d.products, "", cls, true)));
  } else {
    // Too many to read as numbers: the three grids as maps, the current row outlined.
    for (const [title, grid] of [[t("read"), d.window], [t("upstream"), d.upstream], [t("products"), d.products]]) {
      const flat = grid.flat().filter((v) => typeof v === "number");
      const canvas = document.createElement("canvas");
      canvas.className = "map";
      paintGrid(canvas, grid, scaleFor(OH, OW, 156), Math.min(...flat), Math.max(...flat),
                current >= 0 ? { rect: [current, 0, current, OW - 1] } : {});
      grids.append(titled(title, canvas));
    }
  }
  if (current >= 0) {
    const terms = d.window[current].map((x, c) => product(x, d.upstream[current][c]));
    formula($("bw-formula"), terms, fmt(rowSums[current]));
    termList($("bw-terms"), d.window[current].map((x, c) =>
      `x[${d.rows[current]}, ${d.cols[c]}] ${exact(x)} × dy[${current}, ${c}] ${exact(d.upstream[current][c])} = ${exact(d.products[current][c])}`));
    $("bw-check").textContent = `${t("sum")} of output row ${current}: ${fmt(rowSums[current])}`;
  } else {
    formula($("bw-formula"), rowSums.map(fmt), fmt(d.total));
    termList($("bw-terms"), rowSums.map((s, r) => `row ${r}: ${s}`));
    checkLine($("bw-check"), d.total, d.value);
  }
}
for (const [id, key] of [["bw-out", "out"], ["bw-in", "in"], ["bw-row", "row"], ["bw-col", "col"]]) {
  $(id).addEventListener("change", () => {
    const v = parseNumber($(id).value);
    markInvalid($(id), v);
    state.bw[key] = v;
    state.bw.k = 1;
    loadBackward();
  });
}
$("bw-layer").addEventListener("change", () => {
  state.bw = { layer: $("bw-layer").value, out: 0, in: 0, row: 0, col: 0, k: 1 };
  loadBackward();
});

// ---- Live training ----------------------------------------------------------------------------
const train = {
  status: null,
  history: [],
  timer: null,
  mapsBusy: false,
  lastMaps: 0,
  async send(body) {
    try {
      const s = await api("/api/train", body);
      $("train-error").textContent = "";
      if (body.action === "start" || body.action === "reset") this.history = [];
      this.update(s);
    } catch (e) {
      $("train-error").textContent = e.message;
    }
  },
  async poll() {
    try {
      const since = this.history.length ? this.history.at(-1).step : 0;
      const res = await fetch(`/api/train?since=${since}`);
      const s = await res.json();
      if (res.ok) this.update(s);
    } catch (e) { /* the next poll tries again */ }
  },
  update(s) {
    // Only the entries after the last one held (the poll asks for those).
    const last = this.history.length ? this.history.at(-1).step : 0;
    if (s.history) for (const h of s.history) if (h.step > last) this.history.push(h);
    if (s.state === "none") this.history = [];
    this.status = s;
    const section = $("train");
    section.dataset.state = s.state;
    section.dataset.step = s.step ?? 0;
    this.label();
    this.curves();
    if (s.filters) this.filters(s.filters);
    $("train-error").textContent = s.state === "failed" ? s.error || "" : $("train-error").textContent;
    clearTimeout(this.timer);
    if (s.state === "running") this.timer = setTimeout(() => this.poll(), 300);
    if (s.state !== "none" && performance.now() - this.lastMaps > (s.state === "running" ? 1000 : 0)) this.refreshMaps();
  },
  label() {
    const s = this.status || { state: "none" };
    const names = ui[state.lang].train;
    $("train-status").textContent = s.state === "none" ? names.none : `${names[s.state] || s.state}: ${s.step}/${s.steps}`;
    const pause = $("train-pause");
    pause.disabled = !(s.state === "running" || s.state === "paused");
    pause.textContent = s.state === "paused" ? t("resume") : t("pause");
  },
  curves() {
    const svg = $("train-curves");
    const h = this.history;
    if (!h.length) { svg.innerHTML = ""; return; }
    const evals = (this.status && this.status.evals) || [];
    const W = 420, H = 220, L = 44, R = 10, T = 12, B = 30;
    const steps = Math.max(this.status.steps || 1, h.at(-1).step);
    const hi = Math.max(...h.map((e) => e.loss).filter(Number.isFinite), ...evals.map((e) => e.loss)) || 1;
    const x = (s) => L + ((W - L - R) * s) / steps;
    const y = (v) => T + (H - T - B) * (1 - Math.min(1, v / hi));
    const line = h.map((e) => `${x(e.step).toFixed(1)},${y(e.loss).toFixed(1)}`).join(" ");
    const ev = evals.map((e) => `<circle cx="${x(e.step)}" cy="${y(e.loss)}" r="3.5" fill="#e65100"><title>step ${e.step}: test loss ${e.loss}, accuracy ${e.accuracy}</title></circle>`).join("");
    svg.innerHTML =
      `<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#ccd"/>` +
      `<text x="${L - 4}" y="${T + 8}" font-size="10" text-anchor="end">${fmt(hi)}</text>` +
      `<text x="${L - 4}" y="${H - B}" font-size="10" text-anchor="end">0</text>` +
      `<text x="${L}" y="${H - 10}" font-size="11">step 0</text><text x="${W - R}" y="${H - 10}" font-size="11" text-anchor="end">${steps}</text>` +
      `<text x="${(L + W) / 2}" y="${H - 10}" font-size="11" text-anchor="middle">loss: batch (blue), test subset (orange)</text>` +
      `<polyline fill="none" stroke="#3b5bdb" stroke-width="1.2" points="${line}" data-series="loss"/>` + ev;
    const a = evals.at(-1);
    svg.dataset.first = h[0].loss;
    svg.dataset.last = h.at(-1).loss;
    if (a) svg.insertAdjacentHTML("beforeend", `<text x="${W - R - 4}" y="${T + 14}" font-size="11" text-anchor="end">test accuracy ${(a.accuracy * 100).toFixed(1)} %</text>`);
  },
  filters(f) {
    $("train-filters-caption").textContent = `${f.layer}: filters (input channel 0)`;
    const slices = f.weights.map((o) => o[0]);
    const flat = slices.flat(2);
    const lo = Math.min(...flat), hi = Math.max(...flat);
    const box = $("train-filters");
    box.innerHTML = "";
    for (const k of slices) {
      const canvas = document.createElement("canvas");
      canvas.className = "map";
      paintGrid(canvas, k, scaleFor(k.length, k[0].length, 36), lo, hi);
      box.append(canvas);
    }
  },
  // The run's model on the current input: the first layer's maps.
  async refreshMaps() {
    if (this.mapsBusy || !input) return;
    this.mapsBusy = true;
    this.lastMaps = performance.now();
    try {
      const r = await api("/api/network", { pixels: input, model: "training" });
      const layer = r.layers.find((l) => l.output_shape.length === 3);
      const box = $("train-maps");
      box.innerHTML = "";
      if (layer) {
        $("train-maps-caption").textContent = `${layer.path}: maps of the current input (per layer scale)`;
        for (const grid of layer.maps) {
          const canvas = document.createElement("canvas");
          canvas.className = "map";
          paintGrid(canvas, grid, scaleFor(grid.length, grid[0].length, 56), layer.range.min, layer.range.max);
          box.append(canvas);
        }
      }
    } catch (e) { /* no run (reset meanwhile) */ }
    this.mapsBusy = false;
  },
  request(action) {
    return { action, steps: parseNumber($("train-steps").value), lr: parseNumber($("train-lr").value),
             batch_size: parseNumber($("train-batch").value), optimizer: $("train-optimizer").value,
             pace: parseNumber($("train-pace").value) };
  },
};
$("train-start").addEventListener("click", () => train.send(train.request("start")));
$("train-pause").addEventListener("click", () => train.send({ action: train.status && train.status.state === "paused" ? "resume" : "pause" }));
$("train-step").addEventListener("click", () => train.send(train.status && train.status.state !== "none" && train.status.state !== "done"
  ? { action: "step" } : train.request("step")));
$("train-reset").addEventListener("click", () => train.send({ action: "reset" }));
for (const id of ["train-lr", "train-pace"]) {
  $(id).addEventListener("change", () => {
    if (train.status && (train.status.state === "running" || train.status.state === "paused")) {
      train.send({ action: "set", lr: parseNumber($("train-lr").value), pace: parseNumber($("train-pace").value) });
    }
  });
}

// ---- Inputs: test images, a file, a drawing ---------------------------------------------------
// A 1-channel image as [1][H][W]; the API's pixels as sent.
const asChannels = (pixels) => (isGrid(pixels) && !Array.isArray(pixels[0][0]) ? [pixels] : pixels);
function setInput(pixels, label) {
  input = asChannels(pixels);
  inputLabel = label;
  loadNetwork();
}
async function showTest(index) {
  const info = $("test-info");
  const field = $("test-index");
  field.value = index;
  try {
    const v = parseNumber(String(index));
    markInvalid(field, v);
    const r = await api("/api/test-image", { index: v });
    state.test = r.index;
    info.textContent = `test #${r.index}: label ${classNames()[r.label] ?? r.label}, predicted ${classNames()[r.pred] ?? r.pred}`;
    info.classList.remove("error");
    writeUrl();
    setInput(r.pixels, r.label);
  } catch (e) {
    info.textContent = e.message;
    info.classList.add("error");
    return false;
  }
  return true;
}
$("test-show").addEventListener("click", () => showTest($("test-index").value));
$("test-index").addEventListener("keydown", (e) => { if (e.key === "Enter") showTest($("test-index").value); });
$("test-prev").addEventListener("click", () => showTest(Math.max(0, state.test - 1)));
$("test-next").addEventListener("click", () => showTest(state.test + 1));
// An image file, drawn by the browser at the model's input size (its own resampling), as 0..1.
$("image-file").addEventListener("change", async () => {
  const file = $("image-file").files[0];
  if (!file || !model) return;
  const [C, H, W] = model.input;
  try {
    const bitmap = await createImageBitmap(file);
    const canvas = document.createElement("canvas");
    canvas.width = W; canvas.height = H;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(bitmap, 0, 0, W, H);
    const data = ctx.getImageData(0, 0, W, H).data;
    const pixels = [];
    for (let c = 0; c < C; c++) {
      const plane = [];
      for (let y = 0; y < H; y++) {
        const row = [];
        for (let x = 0; x < W; x++) {
          const o = (y * W + x) * 4;
          // A gray model gets the image's luma (ITU-R BT.601, as PIL's convert("L")).
          row.push(C === 1 ? (0.299 * data[o] + 0.587 * data[o + 1] + 0.114 * data[o + 2]) / 255 : data[o + c] / 255);
        }
        plane.push(row);
      }
      pixels.push(plane);
    }
    $("test-info").textContent = `${file.name}, drawn at ${W} x ${H}`;
    setInput(pixels, null);
  } catch (e) {
    $("test-info").textContent = `${file.name}: not an image the browser can read`;
  }
});

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
  $("model-name").textContent = (model.trained ? "trained " : "untrained ") + (model.dataset && model.dataset.name ? `${model.dataset.name} model` : "model");
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
  $("test-info").textContent = "the drawn digit";
  setInput(result.centered.map((row) => row.map((v) => v / 255)), null);
}

// ---- Keyboard: the step-through used last takes ← → Home End and space -------------------------
document.addEventListener("keydown", (e) => {
  const tag = e.target.tagName;
  if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || e.altKey || e.ctrlKey || e.metaKey) return;
  if (tag === "BUTTON" && (e.key === " " || e.key === "Enter")) return;  // the button's own press
  const target = activeStepper || (!$("detail").hidden ? detailStepper : conv);
  if (target.key(e)) e.preventDefault();
});
for (const b of document.querySelectorAll(".lang button")) b.addEventListener("click", () => setLang(b.dataset.lang));
for (const b of $("scale-level").children) {
  b.addEventListener("click", () => {
    state.scale = b.dataset.scale;
    for (const x of $("scale-level").children) x.classList.toggle("on", x === b);
    writeUrl();
    if (net) drawNetwork();
    if (detail && detail.step) renderDetail(detailStepper.k);
  });
}

async function start() {
  readUrl();
  conv.restore = state.figure.conv;
  pool.restore = state.figure.pool;
  for (const id of URL_FIELDS) $(id).addEventListener("change", writeUrl);
  setLang(state.lang);
  for (const x of $("scale-level").children) x.classList.toggle("on", x.dataset.scale === state.scale);
  conv.load();
  pool.load();
  updateShapes();
  try {
    model = await api("/api/model");
    showModel();
  } catch (e) {
    $("net-error").textContent = e.message;
    return;
  }
  train.poll();
  // A test image when the server has test images of the model's shape; else a blank input.
  if (!(await showTest(state.test))) {
    const [C, H, W] = model.input;
    setInput(Array.from({ length: C }, () => Array.from({ length: H }, () => Array(W).fill(0))), null);
  }
}
start();
