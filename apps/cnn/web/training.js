// The live training run: its controls, loss curve, filters and maps, polled from the server.
"use strict";

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
      `<text x="${(L + W) / 2}" y="${H - 10}" font-size="11" text-anchor="middle">${t("lossLegend")}</text>` +
      `<polyline fill="none" stroke="#3b5bdb" stroke-width="1.2" points="${line}" data-series="loss"/>` + ev;
    const a = evals.at(-1);
    svg.dataset.first = h[0].loss;
    svg.dataset.last = h.at(-1).loss;
    if (a) svg.insertAdjacentHTML("beforeend", `<text x="${W - R - 4}" y="${T + 14}" font-size="11" text-anchor="end">${t("testAccuracy")} ${(a.accuracy * 100).toFixed(1)} %</text>`);
  },
  filters(f) {
    $("train-filters-caption").textContent = t("filters")(f.layer);
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
        $("train-maps-caption").textContent = t("trainMaps")(layer.path);
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
