// Browser tests of the explorer: `cnn serve` on a free port, Debian's chromium driven by
// playwright-core. Three models: the tutorial's (trained one epoch on MNIST), one with
// BatchNorm2d (bn-gap, trained a few steps) and an RGB one (rgb-nested, trained a few steps on a
// folder of colour images the test writes). Screenshots go to $E2E_ARTIFACTS (default
// tests/e2e/artifacts); the README's are the ones named readme-*.png.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const binary = process.env.CNN_BINARY || path.join(here, "..", "..", "build", "cnn");
const artifacts = process.env.E2E_ARTIFACTS || path.join(here, "artifacts");
const mnist = path.join(here, "..", "..", "data", "mnist");
mkdirSync(artifacts, { recursive: true });

let browser;
const servers = [];

function cnn(args) {
  execFileSync(binary, args, { stdio: ["ignore", "ignore", "inherit"] });
}

// A trained tutorial model: $CNN_WEIGHTS, or one epoch of MNIST trained here (about 10 s).
function tutorialWeights() {
  if (process.env.CNN_WEIGHTS) return process.env.CNN_WEIGHTS;
  const out = path.join(artifacts, "model.cnnt");
  if (!existsSync(out)) cnn(["train", "--epochs", "1", "--quiet", "--out", out, "--data-dir", mnist]);
  return out;
}
// bn-gap (Conv2d, BatchNorm2d, ReLU, MaxPool2d, AdaptiveAvgPool2d) after 30 steps on MNIST: its
// BatchNorm2d layers have running statistics of their own.
function bnWeights() {
  const out = path.join(artifacts, "bn-gap.cnnt");
  if (!existsSync(out)) {
    cnn(["train", "--model", "bn-gap", "--epochs", "1", "--max-steps", "30", "--quiet", "--overwrite",
         "--out", out, "--data-dir", mnist]);
  }
  return out;
}

// A 24-bit BMP (bottom-up rows, each padded to 4 bytes) of a w x h image, pixel(x, y) -> [r, g, b].
function bmp(w, h, pixel) {
  const stride = Math.ceil((w * 3) / 4) * 4;
  const buf = Buffer.alloc(54 + stride * h);
  buf.write("BM", 0);
  buf.writeUInt32LE(buf.length, 2);
  buf.writeUInt32LE(54, 10);
  buf.writeUInt32LE(40, 14);
  buf.writeInt32LE(w, 18);
  buf.writeInt32LE(h, 22);
  buf.writeUInt16LE(1, 26);
  buf.writeUInt16LE(24, 28);
  buf.writeUInt32LE(stride * h, 34);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const [r, g, b] = pixel(x, h - 1 - y);
    const o = 54 + y * stride + x * 3;
    buf[o] = b; buf[o + 1] = g; buf[o + 2] = r;
  }
  return buf;
}
// Ten classes of 32 x 32 colour images (rgb-nested has ten outputs): stripes, horizontal or
// vertical, in one of five colours; the phase and shade vary per image; train/ and test/ splits.
const COLOURS = [[1, 0.2, 0.1], [0.1, 0.8, 0.2], [0.2, 0.3, 1], [0.9, 0.8, 0.1], [0.7, 0.1, 0.9]];
function rgbFolder() {
  const dir = path.join(artifacts, "stripes10");
  for (const split of ["train", "test"]) for (let k = 0; k < 10; k++) {
    const d = path.join(dir, split, `class${k}`);
    mkdirSync(d, { recursive: true });
    const vertical = k >= 5, colour = COLOURS[k % 5];
    for (let i = 0; i < (split === "train" ? 8 : 2); i++) {
      writeFileSync(path.join(d, `${i}.bmp`), bmp(32, 32, (x, y) => {
        const on = (((vertical ? x : y) + i) >> 2) % 2 === 0;
        const shade = on ? 140 + ((i * 37) % 110) : 25;
        return colour.map((c) => Math.round(c * shade));
      }));
    }
  }
  return dir;
}
function rgbWeights(dir) {
  const out = path.join(artifacts, "rgb-nested.cnnt");
  if (!existsSync(out)) {
    cnn(["train", "--model", "rgb-nested", "--dataset", dir, "--cache-dir", "none", "--epochs", "1",
         "--max-steps", "6", "--batch-size", "8", "--quiet", "--overwrite", "--out", out]);
  }
  return out;
}

// `cnn serve` on a free port; resolves to its base URL.
async function serve(args) {
  const server = spawn(binary, ["serve", "--port", "0", ...args], { stdio: ["ignore", "pipe", "inherit"] });
  servers.push(server);
  return new Promise((resolve, reject) => {
    server.stdout.on("data", (chunk) => {
      const m = /http:\/\/[0-9.]+:\d+\//.exec(chunk.toString());
      if (m) resolve(m[0]);
    });
    server.on("exit", (code) => reject(new Error(`cnn serve exited with ${code}`)));
  });
}

let base, page;
before(async () => {
  base = await serve(["--weights", tutorialWeights(), "--data-dir", mnist]);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  await page.goto(base);
  await page.waitForSelector("#conv-output-grid td");
});

after(async () => {
  await browser?.close();
  for (const s of servers) s.kill();
});

const cells = (selector) => page.$$eval(`${selector} td`, (tds) => tds.map((td) => td.textContent));
const text = (selector) => page.textContent(selector);
async function post(at, route, body) {
  const res = await fetch(new URL(route, at), { method: "POST", body: JSON.stringify(body) });
  const data = await res.json();
  if (!res.ok) throw new Error(`${route}: ${data.error}`);
  return data;
}

// ---- The tutorial's two figures, exact -----------------------------------------------------------

test("the tutorial's convolution figure, step by step, and the reset", async () => {
  assert.equal(await text("#conv-counter"), "0/4");
  assert.deepEqual(await cells("#conv-output-grid"), ["", "", "", ""]);
  const expressions = [
    "9 x 1 + 3 x 0 + 6 x 1 + 2 x 1 = 17", "3 x 1 + 5 x 0 + 2 x 1 + 3 x 1 = 8",
    "6 x 1 + 2 x 0 + 7 x 1 + 4 x 1 = 17", "2 x 1 + 3 x 0 + 4 x 1 + 6 x 1 = 12",
  ];
  const outputs = ["17", "8", "17", "12"];
  for (let k = 1; k <= 4; k++) {
    await page.click("#conv-next");
    assert.equal(await text("#conv-counter"), `${k}/4`);
    assert.equal(await text("#conv-expression"), expressions[k - 1]);
    assert.deepEqual(await cells("#conv-output-grid"), outputs.map((v, i) => (i < k ? v : "")));
    assert.equal((await page.$$("#conv-input-grid td.window")).length, 4);
    if (k === 2) await page.locator("#conv").screenshot({ path: path.join(artifacts, "convolution-step2.png") });
  }
  await page.click("#conv-next");  // the fifth click resets
  assert.equal(await text("#conv-counter"), "0/4");
  assert.deepEqual(await cells("#conv-output-grid"), ["", "", "", ""]);
  assert.equal(await text("#conv-expression"), "");
  // The keys step the figure used last: → twice, ← once, Home back to 0/4.
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("ArrowLeft");
  assert.equal(await text("#conv-counter"), "1/4");
  assert.equal(await text("#conv-expression"), expressions[0]);
  await page.keyboard.press("Home");
  assert.equal(await text("#conv-counter"), "0/4");
});

test("the tutorial's pooling figure, and play becomes pause", async () => {
  for (let k = 0; k < 4; k++) await page.click("#pool-next");
  assert.equal(await text("#pool-counter"), "4/4");
  assert.deepEqual(await cells("#pool-output-grid"), ["7", "7", "9", "6"]);
  assert.equal(await text("#pool-expression"), "max(2, 6, 3, 4) = 6");
  await page.click("#pool-play");
  assert.equal(await text("#pool-play"), "pause");
  await page.waitForFunction(() => document.querySelector("#pool-counter").textContent === "4/4", null, { timeout: 8000 });
  await page.waitForFunction(() => document.querySelector("#pool-play").textContent === "play");
});

test("stride, padding and dilation: the page shows the library's numbers", async () => {
  const image = "1 2 3 4 5\n6 7 8 9 10\n11 12 13 14 15\n16 17 18 19 20";
  await page.fill("#conv-image", image);
  await page.fill("#conv-kernel", "1 -1\n2 0.5");
  await page.fill("#conv-stride", "2,1");
  await page.fill("#conv-padding", "1");
  await page.fill("#conv-dilation", "1,2");
  const want = await post(base, "/api/conv2d/steps", {
    image: image.split("\n").map((r) => r.split(" ").map(Number)), kernel: [[1, -1], [2, 0.5]],
    stride: [2, 1], padding: 1, dilation: [1, 2],
  });
  await page.press("#conv-dilation", "Tab");  // leaving the field commits it, as a user does
  await page.waitForFunction((n) => document.querySelector("#conv-counter").textContent === `0/${n}`,
                             want.steps.length);
  for (let k = 0; k < want.steps.length; k++) await page.click("#conv-next");
  assert.deepEqual(await cells("#conv-output-grid"), want.output.flat().map(String));
  assert.equal(await text("#conv-expression"), want.steps.at(-1).expression);
  // The padded border is drawn, dashed, as zeros.
  assert.ok((await page.$$("#conv-input-grid td.pad")).length > 0);
  await page.locator("#conv").screenshot({ path: path.join(artifacts, "convolution-options.png") });
});

test("an impossible configuration shows the library's error and the page keeps working", async () => {
  await page.fill("#conv-kernel", "1 1 1 1 1 1 1");
  await page.press("#conv-kernel", "Tab");
  await page.waitForFunction(() => document.querySelector("#conv-error").textContent !== "");
  assert.match(await text("#conv-error"), /dilated kernel size/);
  await page.fill("#conv-kernel", "1");
  await page.press("#conv-kernel", "Tab");
  await page.waitForFunction(() => document.querySelector("#conv-error").textContent === "");
  await page.click("#conv-next");
  assert.match(await text("#conv-counter"), /^1\//);

  await page.fill('#shapes-table input[data-layer="2"][data-key="padding"]', "2");
  await page.press('#shapes-table input[data-layer="2"][data-key="padding"]', "Tab");
  await page.waitForFunction(() => document.querySelector("#shapes-error").textContent !== "");
  assert.match(await text("#shapes-error"), /layer 3: MaxPool2d\(kernel_size=2.*at most half/);
  await page.fill('#shapes-table input[data-layer="2"][data-key="padding"]', "1");
  await page.press('#shapes-table input[data-layer="2"][data-key="padding"]', "Tab");
  await page.waitForFunction(() => document.querySelector("#shapes-error").textContent === "");
  assert.equal(await text("#shapes-total"), "Total params: 55,338");
});

// Types into a field and leaves it, as a user does, then waits for the error shown in place.
async function typeAndWaitForError(field, value, errorSelector, message) {
  await page.fill(field, value);
  await page.press(field, "Tab");
  await page.waitForFunction(([sel, want]) => document.querySelector(sel).textContent === want,
                             [errorSelector, message], { timeout: 10000 })
    .catch(async () => assert.equal(await text(errorSelector), message, `${field} = ${JSON.stringify(value)}`));
}

test("what is not a number shows the library's error in place, never a default's figure", async () => {
  for (const [typed, sent] of [["abc", '"abc"'], ["", '""'], ["2,", '"2,"'], ["1.5", "1.5"]]) {
    await typeAndWaitForError("#conv-stride", typed, "#conv-error",
                              `'stride' must be an integer or [h, w] pair, got ${sent}`);
    assert.equal(await text("#conv-counter"), "0/0", `stride ${JSON.stringify(typed)}`);
    assert.deepEqual(await cells("#conv-output-grid"), []);
    assert.deepEqual(await cells("#conv-input-grid"), []);
    assert.equal(await page.$eval("#conv-stride", (el) => el.classList.contains("invalid")), sent.startsWith('"'));
    await page.click("#conv-next");  // nothing to step through
    assert.equal(await text("#conv-counter"), "0/0");
    assert.equal(await text("#conv-expression"), "");
    assert.deepEqual(await cells("#conv-kernel-grid"), []);
  }
  const direct = await fetch(new URL("/api/conv2d/steps", base), {
    method: "POST", body: JSON.stringify({ image: [[1]], kernel: [[1]], stride: "abc" }),
  }).then((r) => r.json());
  assert.equal(direct.error, `'stride' must be an integer or [h, w] pair, got "abc"`);
  await typeAndWaitForError("#conv-stride", "1", "#conv-error", "");
  assert.match(await text("#conv-counter"), /^0\/[1-9]/);
  await typeAndWaitForError("#conv-kernel", "1 x", "#conv-error",
                            `'kernel' holds a non-number at row 0, column 1: "x"`);
  assert.deepEqual(await cells("#conv-output-grid"), []);
  await typeAndWaitForError("#conv-kernel", "1", "#conv-error", "");

  await typeAndWaitForError("#pool-kernel", "abc", "#pool-error",
                            `'kernel_size' must be an integer or [h, w] pair, got "abc"`);
  assert.equal(await text("#pool-counter"), "0/0");
  await typeAndWaitForError("#pool-kernel", "2", "#pool-error", "");
  assert.equal(await text("#pool-counter"), "0/4");

  const conv1Stride = '#shapes-table input[data-layer="0"][data-key="stride"]';
  await typeAndWaitForError(conv1Stride, "abc", "#shapes-error",
                            `layer 1: 'stride' must be an integer or [h, w] pair, got "abc"`);
  assert.equal(await text("#shapes-total"), "");
  assert.equal(await page.inputValue(conv1Stride), "abc");  // what was typed stays, marked
  assert.ok(await page.$eval(conv1Stride, (el) => el.classList.contains("invalid")));
  await typeAndWaitForError(conv1Stride, "1", "#shapes-error", "");
  const dropout = '#shapes-table input[data-layer="9"][data-key="p"]';
  await typeAndWaitForError(dropout, "", "#shapes-error", `layer 10: 'p' must be a number, got ""`);
  await typeAndWaitForError(dropout, "0.3", "#shapes-error", "");
  assert.equal(await text("#shapes-total"), "Total params: 55,338");
});

// ---- Any model: every layer drawn, every convolution and pooling layer taken apart ----------------

// Clicks the cell (row, col) of a canvas that draws a rows x cols grid.
async function clickCell(locator, row, col, rows, cols) {
  const box = await locator.boundingBox();
  await locator.click({ position: { x: ((col + 0.5) * box.width) / cols, y: ((row + 0.5) * box.height) / rows } });
}
const pageInput = (p) => p.evaluate(() => input);
// The sum of |terms| of a drill-down: the scale of the float32 summation error of `value`.
function magnitude(step) {
  if (step.type === "Conv2d") {
    return step.inputs.reduce((a, i) => a + i.products.flat().reduce((s, v) => s + Math.abs(v), 0), 0) + Math.abs(step.bias ?? 0);
  }
  return step.window.flat().reduce((s, v) => s + (typeof v === "number" ? Math.abs(v) : 0), 0);
}

// The whole check on one served model: the overview, a drill-down on every convolution and
// pooling layer, the saliency map and one layer's gradient, and a weight's gradient step by step.
async function checkModel(name, at, p) {
  await p.goto(at);
  await p.waitForFunction(() => document.getElementById("net-layers").dataset.state === "ready", null, { timeout: 20000 });
  const x = await pageInput(p);
  const net = await post(at, "/api/network", { pixels: x });

  // Every layer drawn: the input, then one card per leaf with each channel's map.
  const cards = await p.$$eval("#net-layers .layer", (els) => els.map((e) => ({
    path: e.dataset.path, maps: e.querySelectorAll("canvas.map").length })));
  assert.deepEqual(cards.map((c) => c.path), ["input", ...net.layers.map((l) => l.path)], name);
  net.layers.forEach((l, i) => {
    assert.equal(cards[i + 1].maps, l.output_shape.length === 3 ? l.channels_shown : 1, `${name} ${l.path}`);
  });

  // A clicked pixel of each convolution and pooling layer is the library's value, and its
  // drill-down written out adds up to it (float32 against double summation: within 1e-5 of the
  // terms' magnitude).
  const drill = net.layers.filter((l) => l.drill);
  assert.ok(drill.some((l) => l.type === "Conv2d"), `${name} has a convolution`);
  for (const layer of drill) {
    const [C, H, W] = layer.output_shape;
    for (const [c, row, col] of [[Math.min(1, layer.channels_shown - 1), 0, 0], [layer.channels_shown - 1, H >> 1, (W * 2) / 3 | 0]]) {
      const where = `${name} ${layer.path} [${c}, ${row}, ${col}]`;
      const canvas = p.locator(`#net-layers .layer[data-path="${layer.path}"] canvas[data-channel="${c}"]`);
      await clickCell(canvas, row, col, H, W);
      await p.waitForFunction(([path, c, row, col]) => {
        const d = document.getElementById("detail").dataset;
        return d.path === path && d.channel === String(c) && d.row === String(row) && d.col === String(col) && d.value !== undefined;
      }, [layer.path, c, row, col], { timeout: 10000 });
      const d = await p.$eval("#detail", (el) => ({ ...el.dataset }));
      const want = await post(at, "/api/layer/step", { pixels: x, layer: layer.path, channel: c, row, col });
      assert.equal(d.value, String(want.value), where);
      assert.equal(d.pixel, String(layer.maps[c][row][col]), where);
      assert.equal(Number(d.value), Number(d.pixel), where);
      assert.ok(Math.abs(Number(d.total) - Number(d.value)) <= 1e-5 * (1 + magnitude(want)), `${where}: ${d.total} vs ${d.value}`);
      // The formula: a few terms and the result, the rest folded.
      assert.match(await p.textContent("#detail-formula"), / = /, where);
      if (layer.type === "Conv2d") {
        // The last step adds the channels' sums and the bias: the library's value beside it.
        await p.keyboard.press("End");
        assert.equal(await p.textContent("#detail-counter"), `${want.inputs.length + 1}/${want.inputs.length + 1}`, where);
        assert.match(await p.textContent("#detail-check"), /✓/, where);
      }
    }
  }
  await p.locator("#overview").screenshot({ path: path.join(artifacts, `${name}-overview.png`) });

  // The saliency map is the library's input gradient; a layer's gradient likewise.
  await p.waitForFunction(() => document.getElementById("grad").dataset.state === "ready", null, { timeout: 10000 });
  const cls = net.prediction;
  const layer4 = net.layers.filter((l) => l.output_shape.length === 3).at(-1);
  await p.selectOption("#grad-layer", layer4.path);
  const g = await post(at, "/api/gradient", { pixels: x, class: cls, of: "score", layer: layer4.path });
  const [C, H, W] = net.input;
  for (const [c, r, col] of [[0, H >> 1, W >> 1], [C - 1, 3, W - 4]]) {
    await p.waitForSelector(`#grad-input canvas[data-channel="${c}"]`);
    await p.waitForFunction((path) => document.getElementById("grad-layer-caption").textContent.includes(path), layer4.path);
    await clickCell(p.locator(`#grad-input canvas[data-channel="${c}"]`), r, col, H, W);
    const got = await p.$eval("#grad-readout", (el) => ({ ...el.dataset }));
    assert.deepEqual([got.channel, got.row, got.col], [c, r, col].map(String), name);
    assert.equal(got.value, String(g.input_gradient[c][r][col]), `${name} saliency [${c}, ${r}, ${col}]`);
  }
  const [, LH, LW] = layer4.output_shape;
  await clickCell(p.locator('#grad-layer-maps canvas[data-channel="0"]'), LH - 1, 0, LH, LW);
  const lg = await p.$eval("#grad-layer-readout", (el) => ({ ...el.dataset }));
  assert.equal(lg.value, String(g.layer_gradient[0][LH - 1][0]), `${name} gradient of ${layer4.path}`);
  await p.locator("#grad").screenshot({ path: path.join(artifacts, `${name}-gradients.png`) });

  // One weight's gradient, step by step: the sum of input x upstream gradient is the library's dw.
  const convs = net.layers.filter((l) => l.type === "Conv2d");
  const conv = convs.at(-1);
  await p.selectOption("#bw-layer", conv.path);
  for (const [id, v] of [["#bw-out", conv.output_shape[0] - 1], ["#bw-in", 1], ["#bw-row", 2], ["#bw-col", 1]]) {
    await p.fill(id, String(v));
    await p.press(id, "Tab");
  }
  const dw = await post(at, "/api/layer/dw-step", { pixels: x, layer: conv.path, out_channel: conv.output_shape[0] - 1,
                                                   in_channel: 1, row: 2, col: 1, class: cls });
  await p.waitForFunction((v) => document.getElementById("backward").dataset.value === v, String(dw.value), { timeout: 10000 });
  const b = await p.$eval("#backward", (el) => ({ ...el.dataset }));
  const scale = dw.products.flat().reduce((s, v) => s + Math.abs(v), 0);
  assert.ok(Math.abs(Number(b.total) - Number(b.value)) <= 1e-5 * (1 + scale), `${name} dw: ${b.total} vs ${b.value}`);
  const rows = dw.output_shape[0];
  await p.click("#bw-next");
  assert.equal(await p.textContent("#bw-counter"), `2/${rows + 1}`);
  await p.keyboard.press("End");
  assert.equal(await p.textContent("#bw-counter"), `${rows + 1}/${rows + 1}`);
  assert.match(await p.textContent("#bw-check"), /✓/);
  await p.locator("#backward").screenshot({ path: path.join(artifacts, `${name}-backward.png`) });
}

test("the tutorial's model: every layer, clicked pixels, saliency and dw are the library's", async () => {
  const p = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  await checkModel("tutorial", base, p);
  await p.close();
});

test("a model with BatchNorm2d (bn-gap): the same checks", async () => {
  const at = await serve(["--weights", bnWeights(), "--data-dir", mnist]);
  const p = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  await checkModel("bn-gap", at, p);
  await p.close();
});

test("an RGB model (rgb-nested, on a folder of colour images): the same checks", async () => {
  const dir = rgbFolder();
  const at = await serve(["--weights", rgbWeights(dir), "--dataset", dir]);
  const p = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  await checkModel("rgb-nested", at, p);
  // The input is drawn in colour and as its three channels, R, G, B.
  const labels = await p.$$eval('#net-layers .layer[data-path="input"] .label', (els) => els.map((e) => e.textContent));
  assert.deepEqual(labels, ["R", "G", "B"]);
  await p.close();
});

// ---- Shareable, keyboard, both languages, readable at 1280 and 400 px --------------------------------

test("the view is in the URL: a reload shows the same pixel, step and language", async () => {
  const p = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  await p.goto(`${base}?test=3&lang=ko&scale=network`);
  await p.waitForFunction(() => document.getElementById("net-layers").dataset.state === "ready");
  assert.match(await p.textContent("#test-info"), /테스트 #3: 정답 /);
  assert.ok(await p.isVisible("#overview h2 [lang=ko]"));
  assert.ok(!(await p.isVisible("#overview h2 [lang=en]")));
  const canvas = p.locator('#net-layers .layer[data-path="conv2.0"] canvas[data-channel="5"]');
  await clickCell(canvas, 6, 7, 12, 12);
  await p.waitForFunction(() => document.getElementById("detail").dataset.value !== undefined);
  await p.keyboard.press("ArrowRight");
  await p.keyboard.press("ArrowRight");
  assert.equal(await p.textContent("#detail-counter"), "3/17");
  const where = await p.textContent("#detail-where");
  const url = p.url();
  assert.match(url, /sel=conv2\.0,5,6,7/);
  assert.match(url, /k=3/);
  const q = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  await q.goto(url);
  await q.waitForFunction(() => document.getElementById("detail").dataset.value !== undefined, null, { timeout: 10000 });
  await q.waitForFunction(() => document.getElementById("detail-counter").textContent === "3/17");
  assert.equal(await q.textContent("#detail-where"), where);
  assert.ok(await q.isVisible("#overview h2 [lang=ko]"));
  assert.equal(await q.$eval('#scale-level button[data-scale="network"]', (b) => b.classList.contains("on")), true);
  // Switching the language rewrites what the page wrote, the open detail included.
  await q.click("#lang-en");
  await q.waitForFunction(() => document.getElementById("net-prediction")?.textContent.startsWith("softmax → prediction"));
  assert.ok(await q.isVisible("#overview h2 [lang=en]"));
  await q.waitForFunction(() => document.getElementById("detail-counter").textContent === "3/17");
  assert.match(q.url(), /sel=conv2\.0,5,6,7/);
  assert.doesNotMatch(q.url(), /lang=ko/);
  await q.close();
  // Another scale level repaints the maps and keeps the open detail where it was.
  await p.click('#scale-level button[data-scale="map"]');
  await p.waitForFunction(() => document.getElementById("detail").dataset.value !== undefined &&
                                document.getElementById("detail-counter").textContent === "3/17");
  assert.ok(await p.isVisible("#detail"));
  assert.match(p.url(), /scale=map/);
  // The figures' fields and steps too.
  await p.goto(`${base}?conv-stride=1,1&conv-image=${encodeURIComponent("1 2 3\n4 5 6\n7 8 9")}&convk=2&pool-ceil=1`);
  await p.waitForFunction(() => document.getElementById("conv-counter").textContent === "2/4");
  assert.equal(await p.inputValue("#conv-stride"), "1,1");
  assert.equal(await p.textContent("#conv-expression"), "2 x 1 + 3 x 0 + 5 x 1 + 6 x 1 = 13");
  assert.ok(await p.isChecked("#pool-ceil"));
  await p.close();
});

test("a short live training run: its loss falls, pause and one step work", async () => {
  await page.goto(base);
  await page.waitForFunction(() => document.getElementById("net-layers").dataset.state === "ready");
  await page.fill("#train-steps", "60");
  await page.fill("#train-pace", "0");
  await page.click("#train-start");
  await page.waitForFunction(() => document.getElementById("train").dataset.state === "done", null, { timeout: 60000 });
  const status = await fetch(new URL("/api/train", base)).then((r) => r.json());
  assert.equal(status.history.length, 60);
  const mean = (a) => a.reduce((s, h) => s + h.loss, 0) / a.length;
  assert.ok(mean(status.history.slice(-15)) < mean(status.history.slice(0, 15)),
            `loss ${mean(status.history.slice(0, 15))} -> ${mean(status.history.slice(-15))}`);
  // The page drew every step, and the first layer's filters.
  const points = await page.$eval('#train-curves polyline[data-series="loss"]', (el) => el.getAttribute("points").split(" ").length);
  assert.equal(points, 60);
  assert.equal((await page.$$("#train-filters canvas")).length, 16);
  await page.waitForFunction(() => document.querySelectorAll("#train-maps canvas").length === 16);
  await page.locator("#train").screenshot({ path: path.join(artifacts, "training.png") });

  // A slow run: pause, one step, resume, reset.
  await page.fill("#train-steps", "300");
  await page.fill("#train-pace", "5");
  await page.click("#train-start");
  await page.waitForFunction(() => document.getElementById("train").dataset.state === "running");
  await page.click("#train-pause");
  await page.waitForFunction(() => document.getElementById("train").dataset.state === "paused");
  assert.equal(await text("#train-pause"), "resume");
  const before = Number(await page.$eval("#train", (el) => el.dataset.step));
  await page.click("#train-step");
  await page.waitForFunction((n) => document.getElementById("train").dataset.step === String(n), before + 1);
  await page.click("#train-pause");
  await page.waitForFunction(() => document.getElementById("train").dataset.state === "running");
  assert.equal(await text("#train-pause"), "pause");
  await page.click("#train-reset");
  await page.waitForFunction(() => document.getElementById("train").dataset.state === "none");
});

test("readable at 1280 and 400 px: no sideways scrolling; the README's screenshots", async () => {
  for (const width of [1280, 400]) {
    const p = await browser.newPage({ viewport: { width, height: 900 } });
    await p.goto(`${base}?test=0&sel=conv2.0,3,4,5&k=2`);
    await p.waitForFunction(() => document.getElementById("detail").dataset.value !== undefined, null, { timeout: 10000 });
    const [scroll, inner] = await p.evaluate(() => [document.documentElement.scrollWidth, innerWidth]);
    assert.ok(scroll <= inner, `${width} px: the page is ${scroll} px wide`);
    const shot = async (selector, name, height) => {
      // A clip of the whole page is in page coordinates; the box is in the viewport's.
      const box = await p.locator(selector).boundingBox();
      const top = box.y + (await p.evaluate(() => scrollY));
      await p.screenshot({ path: path.join(artifacts, `readme-${name}-${width}.png`), fullPage: true,
                           clip: { x: 0, y: Math.max(0, top - 8), width, height: Math.min(box.height + 16, height) } });
    };
    await shot("#overview", "overview", width > 600 ? 900 : 1200);
    await shot("#detail", "convolution", 1100);
    await p.fill("#train-steps", "80");
    await p.fill("#train-pace", "0");
    await p.click("#train-start");
    await p.waitForFunction(() => document.getElementById("train").dataset.state === "done", null, { timeout: 60000 });
    await p.waitForFunction(() => document.querySelectorAll("#train-maps canvas").length > 0);
    await shot("#train", "training", 1100);
    await p.close();
  }
});
