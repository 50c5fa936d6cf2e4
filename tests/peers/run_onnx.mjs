// Runs an ONNX model in ONNX Runtime (CPU) for tests/test_onnx_export.cpp:
//   node tests/peers/run_onnx.mjs MODEL.onnx INPUT OUTPUT [INPUT OUTPUT ...]
// INPUT and OUTPUT are tensors in one format: a line of JSON, {"shape": [N, ...]}, then the
// elements as little-endian float32 in row-major order. The model's input is "input", its output
// "output". Exits non-zero with a one-line message on any failure.
import fs from 'node:fs';
import ort from 'onnxruntime-node';

function readTensor(path) {
  const bytes = fs.readFileSync(path);
  const nl = bytes.indexOf(0x0a);
  if (nl < 0) throw new Error(`${path}: no header line`);
  const { shape } = JSON.parse(bytes.subarray(0, nl).toString('utf8'));
  const count = shape.reduce((a, b) => a * b, 1);
  const body = bytes.subarray(nl + 1);
  if (body.length !== count * 4) {
    throw new Error(`${path}: ${body.length} bytes of data for shape [${shape}]`);
  }
  // Copied so that the floats are aligned.
  const data = new Float32Array(count);
  new Uint8Array(data.buffer).set(body);
  return new ort.Tensor('float32', data, shape);
}

function writeTensor(path, tensor) {
  const header = Buffer.from(JSON.stringify({ shape: tensor.dims }) + '\n', 'utf8');
  const data = Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  fs.writeFileSync(path, Buffer.concat([header, data]));
}

const [model, ...pairs] = process.argv.slice(2);
if (!model || pairs.length === 0 || pairs.length % 2 !== 0) {
  console.error('usage: node run_onnx.mjs MODEL.onnx INPUT OUTPUT [INPUT OUTPUT ...]');
  process.exit(2);
}
try {
  // One thread, no graph rewrites beyond the basic ones: the plain float32 kernels.
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
  for (let i = 0; i < pairs.length; i += 2) {
    const result = await session.run({ input: readTensor(pairs[i]) });
    if (!result.output) throw new Error(`no "output" among ${Object.keys(result)}`);
    if (result.output.type !== 'float32') throw new Error(`output is ${result.output.type}`);
    writeTensor(pairs[i + 1], result.output);
  }
} catch (e) {
  console.error(`run_onnx: ${e.message ?? e}`);
  process.exit(1);
}
