// Times an ONNX model in ONNX Runtime (CPU) for tools/compare_peers.py:
//   node tests/peers/bench_onnx.mjs MODEL.onnx C,H,W THREADS SECONDS
// Prints one line of JSON: {"infer": images/s at batch 1000, "latency_us": median of batch-1
// runs}. The session gets ONNX Runtime's best CPU settings: every graph optimisation (BatchNorm
// folded into the convolutions, fused activations), THREADS intra-op threads, one inter-op.
// Inputs are random in [0, 1); the model's input is "input" with a free batch dimension.
import ort from 'onnxruntime-node';

const [model, shapeText, threadsText, secondsText] = process.argv.slice(2);
if (!model || !shapeText || !threadsText || !secondsText) {
  console.error('usage: node bench_onnx.mjs MODEL.onnx C,H,W THREADS SECONDS');
  process.exit(2);
}
const shape = shapeText.split(',').map(Number);
const threads = Number(threadsText);
const seconds = Number(secondsText);

function batch(n) {
  const count = n * shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(count);
  for (let i = 0; i < count; ++i) data[i] = Math.random();
  return new ort.Tensor('float32', data, [n, ...shape]);
}

const now = () => Number(process.hrtime.bigint()) / 1e9;

try {
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
  });
  const big = { input: batch(1000) };
  await session.run(big);
  let runs = 0;
  let t0 = now();
  while (now() - t0 < seconds) {
    await session.run(big);
    ++runs;
  }
  const infer = (runs * 1000) / (now() - t0);

  const one = { input: batch(1) };
  for (let i = 0; i < 50; ++i) await session.run(one);
  const us = [];
  t0 = now();
  while (now() - t0 < seconds || us.length < 100) {
    const t = now();
    await session.run(one);
    us.push((now() - t) * 1e6);
  }
  us.sort((a, b) => a - b);
  console.log(JSON.stringify({ infer, latency_us: us[us.length >> 1] }));
} catch (e) {
  console.error(`bench_onnx: ${e.message ?? e}`);
  process.exit(1);
}
