// Browser tests of the explorer: `cnn serve` on a free port, Debian's chromium driven by
// playwright-core. Screenshots go to $E2E_ARTIFACTS (default tests/e2e/artifacts).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const binary = process.env.CNN_BINARY || path.join(here, "..", "..", "build", "cnn");
const artifacts = process.env.E2E_ARTIFACTS || path.join(here, "artifacts");
mkdirSync(artifacts, { recursive: true });

let server, base, browser, page;

// A trained model to draw on: $CNN_WEIGHTS, or one epoch of MNIST trained here (about 10 s).
function weights() {
  if (process.env.CNN_WEIGHTS) return process.env.CNN_WEIGHTS;
  const out = path.join(artifacts, "model.cnnt");
  if (!existsSync(out)) {
    execFileSync(binary, ["train", "--epochs", "1", "--quiet", "--out", out,
                          "--data-dir", path.join(here, "..", "..", "data", "mnist")], { stdio: "inherit" });
  }
  return out;
}

before(async () => {
  server = spawn(binary, ["serve", "--port", "0", "--weights", weights(),
                          "--data-dir", path.join(here, "..", "..", "data", "mnist")],
                 { stdio: ["ignore", "pipe", "inherit"] });
  base = await new Promise((resolve, reject) => {
    server.stdout.on("data", (chunk) => {
      const m = /http:\/\/[0-9.]+:\d+\//.exec(chunk.toString());
      if (m) resolve(m[0]);
    });
    server.on("exit", (code) => reject(new Error(`cnn serve exited with ${code}`)));
  });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
  await page.goto(base);
  await page.waitForSelector("#conv-output-grid td");
});

after(async () => {
  await browser?.close();
  server?.kill();
});

const cells = (selector) => page.$$eval(`${selector} td`, (tds) => tds.map((td) => td.textContent));
const text = (selector) => page.textContent(selector);
async function api(route, body) {
  const res = await fetch(new URL(route, base), { method: "POST", body: JSON.stringify(body) });
  return res.json();
}

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
    if (k === 2) await page.screenshot({ path: path.join(artifacts, "convolution-step2.png"), fullPage: true });
  }
  await page.click("#conv-next");  // the fifth click resets
  assert.equal(await text("#conv-counter"), "0/4");
  assert.deepEqual(await cells("#conv-output-grid"), ["", "", "", ""]);
  assert.equal(await text("#conv-expression"), "");
});

test("the tutorial's pooling figure", async () => {
  for (let k = 0; k < 4; k++) await page.click("#pool-next");
  assert.equal(await text("#pool-counter"), "4/4");
  assert.deepEqual(await cells("#pool-output-grid"), ["7", "7", "9", "6"]);
  assert.equal(await text("#pool-expression"), "max(2, 6, 3, 4) = 6");
});

test("stride, padding and dilation: the page shows the library's numbers", async () => {
  const image = "1 2 3 4 5\n6 7 8 9 10\n11 12 13 14 15\n16 17 18 19 20";
  await page.fill("#conv-image", image);
  await page.fill("#conv-kernel", "1 -1\n2 0.5");
  await page.fill("#conv-stride", "2,1");
  await page.fill("#conv-padding", "1");
  await page.fill("#conv-dilation", "1,2");
  const want = await api("/api/conv2d/steps", {
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
  await page.screenshot({ path: path.join(artifacts, "convolution-options.png"), fullPage: true });
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
  await page.screenshot({ path: path.join(artifacts, "shapes-error.png"), fullPage: true });
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
  // The convolution: a stride of "abc" is not stride 1. Each refusal is the API's own message,
  // and the figure is cleared rather than computed with a default.
  for (const [typed, sent] of [["abc", '"abc"'], ["", '""'], ["2,", '"2,"'], ["1.5", "1.5"]]) {
    await typeAndWaitForError("#conv-stride", typed, "#conv-error",
                              `'stride' must be an integer or [h, w] pair, got ${sent}`);
    assert.equal(await text("#conv-counter"), "0/0", `stride ${JSON.stringify(typed)}`);
    assert.deepEqual(await cells("#conv-output-grid"), []);
    assert.deepEqual(await cells("#conv-input-grid"), []);
    // Text is outlined as the field at fault; a number that is no integer is left to the message.
    assert.equal(await page.$eval("#conv-stride", (el) => el.classList.contains("invalid")), sent.startsWith('"'));
    await page.click("#conv-next");  // nothing to step through
    assert.equal(await text("#conv-counter"), "0/0");
    assert.equal(await text("#conv-expression"), "");
    assert.deepEqual(await cells("#conv-kernel-grid"), []);
    if (typed === "abc") await page.screenshot({ path: path.join(artifacts, "stride-not-a-number.png"), fullPage: true });
  }
  // The same message as the API's over HTTP: the page only relays it.
  const direct = await api("/api/conv2d/steps", { image: [[1]], kernel: [[1]], stride: "abc" });
  assert.equal(direct.error, `'stride' must be an integer or [h, w] pair, got "abc"`);
  await typeAndWaitForError("#conv-stride", "1", "#conv-error", "");
  assert.match(await text("#conv-counter"), /^0\/[1-9]/);
  assert.ok(!(await page.$eval("#conv-stride", (el) => el.classList.contains("invalid"))));
  // A cell of the kernel.
  await typeAndWaitForError("#conv-kernel", "1 x", "#conv-error",
                            `'kernel' holds a non-number at row 0, column 1: "x"`);
  assert.deepEqual(await cells("#conv-output-grid"), []);
  await typeAndWaitForError("#conv-kernel", "1", "#conv-error", "");

  // Pooling: a kernel of "abc" is not the default of anything.
  await typeAndWaitForError("#pool-kernel", "abc", "#pool-error",
                            `'kernel_size' must be an integer or [h, w] pair, got "abc"`);
  assert.equal(await text("#pool-counter"), "0/0");
  assert.deepEqual(await cells("#pool-output-grid"), []);
  await typeAndWaitForError("#pool-kernel", "2", "#pool-error", "");
  assert.equal(await text("#pool-counter"), "0/4");

  // The layer stack: no shapes or total are shown for a stack the library refused.
  const conv1Stride = '#shapes-table input[data-layer="0"][data-key="stride"]';
  await typeAndWaitForError(conv1Stride, "abc", "#shapes-error",
                            `layer 1: 'stride' must be an integer or [h, w] pair, got "abc"`);
  assert.equal(await text("#shapes-total"), "");
  const shapes = await page.$$eval("#shapes-table tr", (trs) => trs.slice(1).map((tr) => tr.cells[2].textContent));
  assert.deepEqual(shapes, shapes.map(() => ""));
  assert.equal(await page.inputValue(conv1Stride), "abc");  // what was typed stays, marked
  assert.ok(await page.$eval(conv1Stride, (el) => el.classList.contains("invalid")));
  await typeAndWaitForError(conv1Stride, "1", "#shapes-error", "");
  const dropout = '#shapes-table input[data-layer="9"][data-key="p"]';
  await typeAndWaitForError(dropout, "", "#shapes-error", `layer 10: 'p' must be a number, got ""`);
  assert.equal(await text("#shapes-total"), "");
  await typeAndWaitForError(dropout, "0.3", "#shapes-error", "");
  assert.equal(await text("#shapes-total"), "Total params: 55,338");
});

// Strokes on the drawing pad, in pad pixels.
async function draw(strokes) {
  await page.click("#draw-clear");
  const box = await page.locator("#draw-canvas").boundingBox();
  for (const stroke of strokes) {
    await page.mouse.move(box.x + stroke[0][0], box.y + stroke[0][1]);
    await page.mouse.down();
    for (const [x, y] of stroke.slice(1)) await page.mouse.move(box.x + x, box.y + y, { steps: 12 });
    await page.mouse.up();
  }
}

test("a drawn digit is prepared as MNIST's are and classified", async () => {
  await page.evaluate(() => { document.getElementById("draw-pred").textContent = ""; });
  await draw([[[112, 30], [112, 194]]]);  // a one
  await page.waitForFunction(() => document.getElementById("draw-pred").textContent !== "");
  assert.equal(await text("#draw-pred"), "1");
  await page.evaluate(() => { document.getElementById("draw-pred").textContent = ""; });
  await draw([[[60, 45], [165, 45], [105, 195]]]);  // a seven
  await page.waitForFunction(() => document.getElementById("draw-pred").textContent !== "");
  assert.equal(await text("#draw-pred"), "7");
  const centred = await page.locator("#draw-centered").boundingBox();
  assert.equal(Math.round(centred.width), 28 * 4 + 2);
  await page.locator("#draw").screenshot({ path: path.join(artifacts, "drawn-seven.png") });
});

test("a clicked feature-map pixel equals its step-through", async () => {
  await page.waitForFunction(() => document.getElementById("inside").dataset.state === "ready");
  for (const [channel, row, col] of [[0, 13, 13], [5, 4, 20], [15, 25, 0]]) {
    await page.evaluate(() => { delete document.getElementById("inside-step").dataset.value; });
    const map = page.locator(`#inside-conv1 canvas[data-channel="${channel}"]`);
    await map.click({ position: { x: col * 3 + 1, y: row * 3 + 1 } });
    await page.waitForFunction(() => document.getElementById("inside-step").dataset.value !== undefined);
    const { value, pixel } = await page.$eval("#inside-step", (el) => ({ ...el.dataset }));
    assert.equal(Number(value), Number(pixel), `map ${channel} at (${row}, ${col})`);
    assert.match(await text("#inside-step-expression"), / x .* \+ .* = /);
  }
  await page.locator("#inside").screenshot({ path: path.join(artifacts, "inside.png") });
});

test("a clicked pooled conv2 pixel is taken apart into its window and 16 convolutions", async () => {
  await page.waitForFunction(() => document.getElementById("inside").dataset.state === "ready");
  for (const [channel, row, col] of [[0, 3, 3], [17, 1, 5], [31, 6, 0]]) {
    await page.evaluate(() => { delete document.getElementById("inside-step2").dataset.value; });
    const map = page.locator(`#inside-pool2 canvas[data-channel="${channel}"]`);
    await map.click({ position: { x: col * 8 + 3, y: row * 8 + 3 } });
    await page.waitForFunction(() => document.getElementById("inside-step2").dataset.value !== undefined);
    const { value, pixel, sum, pre } = await page.$eval("#inside-step2", (el) => ({ ...el.dataset }));
    const where = `map ${channel} at (${row}, ${col})`;
    assert.equal(Number(value), Number(pixel), where);
    assert.equal(Math.max(0, Number(pre)), Number(value), where);
    assert.ok(Math.abs(Number(sum) - Number(pre)) <= 1e-4 * (1 + Math.abs(Number(pre))), `${where}: ${sum} vs ${pre}`);
    assert.equal((await page.$$("#inside-step2 .inside-step2-channel")).length, 16, where);
    assert.match(await text("#inside-step2-pool"), /max\(.*\) = /);
  }
  await page.locator("#inside-step2").screenshot({ path: path.join(artifacts, "inside-conv2-step.png") });
});

test("a test image inside the model, and the training curves", async () => {
  await page.fill("#test-index", "0");
  await page.click("#test-show");
  await page.waitForFunction(() => document.getElementById("test-info").textContent.startsWith("test #0"));
  assert.match(await text("#test-info"), /label 7, predicted 7/);
  await page.waitForFunction(() => document.getElementById("inside").dataset.state === "ready");
  const map = page.locator('#inside-conv1 canvas[data-channel="3"]');
  await page.evaluate(() => { delete document.getElementById("inside-step").dataset.value; });
  await map.click({ position: { x: 12 * 3 + 1, y: 10 * 3 + 1 } });
  await page.waitForFunction(() => document.getElementById("inside-step").dataset.value !== undefined);
  const { value, pixel } = await page.$eval("#inside-step", (el) => ({ ...el.dataset }));
  assert.equal(Number(value), Number(pixel));
  assert.equal((await page.$$("#model-curves polyline")).length, 4);
  await page.locator("#model").screenshot({ path: path.join(artifacts, "model.png") });
});
