// Trains a small CNN in TensorFlow.js (@tensorflow/tfjs 4.22, its pure-JS CPU backend) and saves
// it as a layers-model, for tests/test_keras_import.cpp:
//   node tests/peers/tfjs_train.mjs OUTDIR
// writes into OUTDIR:
//   model.json, group1-shard1of1.bin  the model as tf.io's file format has it (what
//                                     tf.io.browserFiles / tfjs-node's file:// write)
//   keras.json                        model.toJSON(null, false): the Keras-style topology alone
//   inputs.bin                        test images, NHWC (N, 28, 28, 1)
//   predictions.bin                   the model's logits for them, (N, 10), in inference mode
// Tensors are a line of JSON, {"shape": [...]}, then little-endian float32, row-major (the format
// of run_onnx.mjs). The data are synthetic and deterministic (an LCG), the initialisers seeded;
// training runs a few Adam steps so that every weight and BatchNormalization's moving statistics
// (momentum 0.5, so that they move in a few steps) leave their initial values.
// Exits non-zero with a one-line message on any failure.
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';

const out = process.argv[2];
if (!out) {
  console.error('usage: node tfjs_train.mjs OUTDIR');
  process.exit(2);
}

function lcg(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

// n images of 28x28x1: a bright blob whose position depends on the class, plus noise.
function data(n, seed) {
  const rand = lcg(seed);
  const x = new Float32Array(n * 28 * 28);
  const y = new Float32Array(n * 10);
  for (let i = 0; i < n; ++i) {
    const c = i % 10;
    y[i * 10 + c] = 1;
    const cy = 6 + 2 * (c % 5) + rand() * 2, cx = 6 + 3 * Math.floor(c / 5) * 2 + rand() * 2;
    for (let r = 0; r < 28; ++r) {
      for (let q = 0; q < 28; ++q) {
        const d2 = (r - cy) ** 2 + (q - cx) ** 2;
        x[i * 784 + r * 28 + q] = Math.exp(-d2 / 18) + 0.2 * rand();
      }
    }
  }
  return { x: tf.tensor4d(x, [n, 28, 28, 1]), y: tf.tensor2d(y, [n, 10]) };
}

function writeTensor(file, shape, values) {
  const header = Buffer.from(JSON.stringify({ shape }) + '\n', 'utf8');
  const f32 = Float32Array.from(values);
  fs.writeFileSync(file, Buffer.concat([header, Buffer.from(f32.buffer)]));
}

try {
  await tf.setBackend('cpu');
  const init = (seed) => tf.initializers.glorotUniform({ seed });
  const model = tf.sequential({ name: 'tfjs_cnn' });
  // 28 -> 14 with TensorFlow's "same" padding at stride 2: one row and column of zeros, at the
  // bottom and right only (PyTorch's symmetric padding would differ).
  model.add(tf.layers.conv2d({
    inputShape: [28, 28, 1], filters: 8, kernelSize: 3, strides: 2, padding: 'same',
    activation: 'relu', kernelInitializer: init(1), name: 'conv2d',
  }));
  model.add(tf.layers.batchNormalization({ momentum: 0.5, epsilon: 1e-3, name: 'batch_normalization' }));
  model.add(tf.layers.maxPooling2d({ poolSize: 2, name: 'max_pooling2d' }));  // 14 -> 7
  model.add(tf.layers.conv2d({
    filters: 6, kernelSize: [3, 2], padding: 'same', activation: 'tanh',
    kernelInitializer: init(2), name: 'conv2d_1',
  }));
  // 7 -> 4, "same": padding (0, 1) per axis; the mean over the cells inside the input.
  model.add(tf.layers.averagePooling2d({ poolSize: 2, strides: 2, padding: 'same', name: 'average_pooling2d' }));
  model.add(tf.layers.flatten({ name: 'flatten' }));  // (H, W, C) order: 4 * 4 * 6 = 96
  model.add(tf.layers.dense({ units: 16, activation: 'relu', kernelInitializer: init(3), name: 'dense' }));
  model.add(tf.layers.dropout({ rate: 0.25, seed: 4, name: 'dropout' }));
  model.add(tf.layers.dense({ units: 10, kernelInitializer: init(5), name: 'dense_1' }));
  model.compile({
    optimizer: tf.train.adam(0.01),
    loss: (labels, logits) => tf.losses.softmaxCrossEntropy(labels, logits),
  });
  const train = data(64, 7);
  await model.fit(train.x, train.y, { batchSize: 16, epochs: 2, shuffle: false, verbose: 0 });

  fs.mkdirSync(out, { recursive: true });
  let artifacts;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const weightData = Array.isArray(artifacts.weightData)
    ? tf.io.CompositeArrayBuffer.join(artifacts.weightData)
    : artifacts.weightData;
  const shard = 'group1-shard1of1.bin';
  fs.writeFileSync(path.join(out, shard), Buffer.from(weightData));
  fs.writeFileSync(path.join(out, 'model.json'), JSON.stringify({
    format: 'layers-model',
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: [shard], weights: artifacts.weightSpecs }],
  }));
  fs.writeFileSync(path.join(out, 'keras.json'), JSON.stringify(model.toJSON(null, false)));

  const test = data(12, 99);
  const logits = model.predict(test.x);
  writeTensor(path.join(out, 'inputs.bin'), test.x.shape, await test.x.data());
  writeTensor(path.join(out, 'predictions.bin'), logits.shape, await logits.data());
} catch (e) {
  console.error(`tfjs_train: ${e.message ?? e}`);
  process.exit(1);
}
