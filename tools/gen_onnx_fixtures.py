"""Writes tests/fixtures/onnx/: models built and trained in PyTorch 1.13, exported by
torch.onnx.export, with PyTorch's outputs, for tests/test_onnx_import.cpp.

  /usr/bin/python3 tools/gen_onnx_fixtures.py [DATA_DIR]   (DATA_DIR: MNIST's IDX files, data/mnist)

Each NAME.onnx has a NAME.cnnt archive beside it: "input" (a batch) and "output" (PyTorch's
outputs for it, in evaluation mode). Together they cover every op the importer reads, in the forms
torch.onnx.export writes them: Conv (padded, strided, dilated, grouped, without bias),
BatchNormalization (kept, and folded into the Conv by constant folding), MaxPool (ceil_mode),
AveragePool (count_include_pad both ways: the padded one as Pad + AveragePool), GlobalAveragePool,
Relu, LeakyRelu, Sigmoid, Tanh, GELU (Erf), SiLU (Sigmoid, Mul), Dropout, Flatten, Reshape
(x.view(x.size(0), -1): Shape, Gather, Unsqueeze, Concat), Gemm, MatMul + Add, Softmax,
LogSoftmax, Identity; at opsets 11, 13, 15 and 17, batch dimension dynamic.

tutorial_trained.onnx is the tutorial's model trained here on MNIST (400 Adam steps, seed 0); its
archive holds the number of test images PyTorch classifies correctly and its logits for the first
100 test images.
"""
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from archive import write_archive  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "onnx")


def train_a_little(model, shape, steps=30, classes=10, seed=0):
    """A few Adam steps on random data, so that weights are not their initial draws and
    BatchNorm's running statistics have moved."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        x = torch.randn((16,) + shape, generator=g)
        y = torch.randint(0, classes, (16,), generator=g)
        out = model(x)
        loss = nn.functional.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def export(name, model, shape, opset, fold=True, batch=5):
    torch.manual_seed(1)
    x = torch.randn((batch,) + shape)
    with torch.no_grad():
        y = model(x)
    path = os.path.join(OUT, name + ".onnx")
    torch.onnx.export(model, x, path, opset_version=opset, input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                      do_constant_folding=fold,
                      # Evaluation mode folds BatchNorm into the Conv before it; PRESERVE (the model
                      # is in evaluation mode) keeps it a BatchNormalization.
                      training=torch.onnx.TrainingMode.EVAL if fold else torch.onnx.TrainingMode.PRESERVE)
    write_archive(os.path.join(OUT, name + ".cnnt"), {"input": x.numpy(), "output": y.numpy()},
                  {"opset": opset, "torch": torch.__version__})
    print(f"{name}.onnx: opset {opset}, {os.path.getsize(path)} bytes")


class MatMulNet(nn.Module):
    """x.view(x.size(0), -1) @ W + b: Reshape by Shape/Gather/Unsqueeze/Concat, MatMul + Add."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2)
        self.w = nn.Parameter(torch.randn(4 * 6 * 6, 10) * 0.1)
        self.b = nn.Parameter(torch.randn(10) * 0.1)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        x = x.view(x.size(0), -1)
        return torch.softmax(x @ self.w + self.b, dim=1)


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, 1, rows, cols)
    return np.frombuffer(data, np.uint8, offset=8)


class Tutorial(nn.Module):
    """The tutorial's CNN (models/tutorial.json), with its names."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2, 2, padding=1))
        self.conv2 = nn.Sequential(nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2, 2, padding=1))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(1568, 32), nn.ReLU(), nn.Dropout(0.3),
                                        nn.Linear(32, 10))

    def forward(self, x):
        return self.classifier(self.conv2(self.conv1(x)))


def trained_tutorial(data_dir):
    torch.manual_seed(0)
    model = Tutorial()
    xs = torch.from_numpy(read_idx(os.path.join(data_dir, "train-images-idx3-ubyte")).astype(np.float32) / 255)
    ys = torch.from_numpy(read_idx(os.path.join(data_dir, "train-labels-idx1-ubyte")).astype(np.int64))
    tx = torch.from_numpy(read_idx(os.path.join(data_dir, "t10k-images-idx3-ubyte")).astype(np.float32) / 255)
    ty = torch.from_numpy(read_idx(os.path.join(data_dir, "t10k-labels-idx1-ubyte")).astype(np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(xs), generator=g)
    model.train()
    for step in range(400):
        idx = perm[step * 64:(step + 1) * 64]
        loss = nn.functional.cross_entropy(model(xs[idx]), ys[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(tx[i:i + 1000]) for i in range(0, len(tx), 1000)])
    correct = int((logits.argmax(1) == ty).sum())
    path = os.path.join(OUT, "tutorial_trained.onnx")
    torch.onnx.export(model, tx[:1], path, opset_version=13, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    write_archive(os.path.join(OUT, "tutorial_trained.cnnt"),
                  {"logits_first_100": logits[:100].numpy(), "correct": np.float32(correct)},
                  {"correct": correct, "test_images": len(tx), "steps": 400, "torch": torch.__version__})
    print(f"tutorial_trained.onnx: {correct} of {len(tx)} test images right in PyTorch")


def main():
    data_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "data", "mnist")
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)

    # Convolutions, BatchNorm kept (no constant folding), pools, Gemm, Softmax.
    bn = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                       nn.MaxPool2d(2, ceil_mode=True), nn.Conv2d(8, 8, 3, stride=2, padding=(1, 0), groups=2),
                       nn.BatchNorm2d(8, eps=1e-3, momentum=0.2), nn.LeakyReLU(0.1),
                       nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False),
                       nn.Flatten(), nn.Linear(8 * 5 * 4, 6), nn.Softmax(dim=1))
    train_a_little(bn, (3, 15, 15), classes=6)
    export("bn_kept", bn, (3, 15, 15), 17, fold=False)
    # The same folded: Conv + BN become one Conv (torch's constant folding in evaluation mode).
    export("bn_folded", bn, (3, 15, 15), 13, fold=True)

    # Activations, dilation, padded average pooling (Pad + AveragePool), global pooling, Dropout.
    act = nn.Sequential(nn.Conv2d(1, 6, 3, dilation=2, padding=2), nn.GELU(), nn.Conv2d(6, 6, 3), nn.SiLU(),
                        nn.AvgPool2d(3, stride=2, padding=1), nn.Tanh(), nn.Conv2d(6, 8, 1), nn.Sigmoid(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.25), nn.Linear(8, 8), nn.Identity(),
                        nn.Linear(8, 5), nn.LogSoftmax(dim=1))
    train_a_little(act, (1, 12, 12), classes=5)
    for opset in (11, 15, 17):
        export(f"activations_op{opset}", act, (1, 12, 12), opset)

    mm = MatMulNet()
    train_a_little(mm, (1, 14, 14))
    export("matmul_reshape", mm, (1, 14, 14), 13)

    trained_tutorial(data_dir)


if __name__ == "__main__":
    main()
