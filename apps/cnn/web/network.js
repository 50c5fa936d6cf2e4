// The network view: every layer's maps for the current input, and the detail view that takes
// one output of a convolution or pooling layer apart.
"use strict";

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
    if (state.scale === "map") scaleBar(bar, 0, 1, t("eachMap"));
    else scaleBar(bar, ...rangeOf(layer, 0), t(state.scale === "network" && layer.path !== "input" ? "networkScale" : "layerScale"));
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
    scaleBar(bar, lo, hi, t("layerScale"));
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
  h.textContent = `${t("prediction")}: ${names[net.prediction] ?? net.prediction}` +
    (inputLabel !== null ? ` (${t("label")} ${names[inputLabel] ?? inputLabel})` : "");
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
