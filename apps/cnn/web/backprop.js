// The backward views: the gradient of a class's score or loss with respect to the input
// (saliency) and to a layer's maps, and one convolution weight's gradient step by step.
"use strict";

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
    `${t("objective")(d.of, names[d.class] ?? d.class, fmt(d.objective))}; ${t("reads")(d.weight.join(", "), d.layer, d.input_channel)}`;
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
