// The explorer's page: the inputs (test images, an image file, a drawing), the keyboard, and the
// start. Loaded last (index.html).
"use strict";

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
    info.textContent = t("testInfo")(r.index, classNames()[r.label] ?? r.label, classNames()[r.pred] ?? r.pred);
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
    $("test-info").textContent = t("file")(file.name, W, H);
    setInput(pixels, null);
  } catch (e) {
    $("test-info").textContent = t("unreadable")(file.name);
  }
});


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
    if (!net) return;
    // The maps again on the new scale; the open detail reopens under its layer at its step.
    drawNetwork();
    if (state.sel) openDetail(state.sel, state.k);
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
