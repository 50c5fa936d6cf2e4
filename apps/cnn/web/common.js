// The explorer's page, shared pieces: the API, reading fields, number formats, the language, the
// state kept in the URL, the colour map, and the step-through widgets. The page computes nothing
// itself: every output, range, gradient, expression and shape comes from the library through the
// JSON API (cnn serve); the scripts only lay them out. Loaded first; the others follow in
// index.html's order, app.js last.
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
    testInfo: (i, label, pred) => `test #${i}: label ${label}, predicted ${pred}`,
    model: (trained, data) => `${trained ? "trained" : "untrained"} ${data ? `${data} ` : ""}model`,
    drawn: "the drawn digit", file: (name, w, h) => `${name}, drawn at ${w} x ${h}`,
    unreadable: (name) => `${name}: not an image the browser can read`,
    layerScale: "layer", networkScale: "network", eachMap: "each map: its min → max", zeroTick: "(white tick: 0)",
    prediction: "softmax → prediction", label: "label",
    objective: (of, cls, v) => `${of === "loss" ? "cross-entropy loss, target" : "score of class"} ${cls} = ${v}`,
    reads: (w, layer, c) => `dw[${w}] of ${layer} reads input channel ${c}`,
    filters: (layer) => `${layer}: filters (input channel 0)`,
    trainMaps: (layer) => `${layer}: maps of the current input (per layer scale)`,
    lossLegend: "loss: batch (blue), test subset (orange)", testAccuracy: "test accuracy",
  },
  ko: {
    input: "입력", channel: "채널", step: "단계", value: "값", library: "라이브러리의 값",
    sum: "합", bias: "bias", more: (n) => `… 항 ${n}개 더 …`, window: "윈도", kernel: "커널",
    products: "곱", winner: "최댓값", divisor: "나누는 수", padding: "padding",
    upstream: "상류 기울기 dy", read: "읽은 입력 값", train: { none: "아직 없음", running: "학습 중",
      paused: "일시정지", done: "완료", failed: "실패" },
    pause: "일시정지", resume: "계속", play: "재생", stop: "일시정지",
    testInfo: (i, label, pred) => `테스트 #${i}: 정답 ${label}, 예측 ${pred}`,
    model: (trained, data) => `${trained ? "학습된" : "학습 전"} ${data ? `${data} ` : ""}모델`,
    drawn: "그린 숫자", file: (name, w, h) => `${name}, ${w} x ${h}로 그림`,
    unreadable: (name) => `${name}: 브라우저가 읽을 수 없는 이미지`,
    layerScale: "층", networkScale: "네트워크", eachMap: "맵마다: 최솟값 → 최댓값", zeroTick: "(흰 눈금: 0)",
    prediction: "softmax → 예측", label: "정답",
    objective: (of, cls, v) => `${of === "loss" ? "교차 엔트로피 손실, 정답" : "클래스 점수"} ${cls} = ${v}`,
    reads: (w, layer, c) => `${layer}의 dw[${w}]는 입력 채널 ${c}을 읽습니다`,
    filters: (layer) => `${layer}: 필터 (입력 채널 0)`,
    trainMaps: (layer) => `${layer}: 현재 입력의 맵 (층 단위 색 범위)`,
    lossLegend: "손실: 배치 (파랑), 테스트 일부 (주황)", testAccuracy: "테스트 정확도",
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
  // What the page wrote in the other language is written again.
  if (model) showModel();
  if (net) loadNetwork();
  if (train.status) train.update(train.status);
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
  if (lo < 0 && hi > 0) el.append(span(t("zeroTick")));
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
