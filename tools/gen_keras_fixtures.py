#!/usr/bin/python3
"""Writes tests/fixtures/keras_same.cnnt: TensorFlow's padding="same" with stride > 1, computed
with PyTorch 1.13 (Debian's python3-torch), for tests/test_keras.cpp.

TensorFlow (tensorflow/core/framework/kernel_shape_util.cc) pads "same" so that
out = ceil(in / stride), with total = max((out - 1) * stride + (k - 1) * dilation + 1 - in, 0)
per axis, total // 2 before and the rest after (the odd row/column at the bottom/right).
PyTorch refuses padding="same" with stride > 1, so each case pads explicitly with F.pad and then
convolves or pools without padding:
- Conv2D: zeros;
- MaxPooling2D: -inf (a padded cell never wins, as in TensorFlow's max pool);
- AveragePooling2D: zeros, each window's sum divided by the number of cells inside the input (the
  same pooling of a padded tensor of ones), as TensorFlow's average pool.
Each case stores x, its random upstream gradient dy, y and dx (and w, b, dw, db for Conv2D).

    /usr/bin/python3 tools/gen_keras_fixtures.py   # Debian's python3 with python3-torch, python3-numpy
"""
import os
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from archive import write_archive  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
torch.set_num_threads(1)
torch.manual_seed(20240611)


def np32(t):
    return t.detach().cpu().numpy().astype(np.float32)


def same(n, k, s, d=1):
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def pads(x, k, s, d=(1, 1)):
    top, bottom = same(x.shape[2], k[0], s[0], d[0])
    left, right = same(x.shape[3], k[1], s[1], d[1])
    return (left, right, top, bottom)


def main():
    # (op, (N, C, H, W), kernel, stride, dilation, C_out)
    specs = [
        ("conv", (2, 3, 7, 8), (3, 3), (2, 2), (1, 1), 4),  # odd H (pads 1, 1), even W (0, 1)
        ("conv", (1, 2, 8, 9), (3, 2), (2, 3), (1, 1), 3),  # even kernel side, stride 3
        ("conv", (2, 2, 9, 10), (3, 3), (2, 2), (2, 2), 3),  # dilation 2: effective kernel 5
        ("conv", (1, 1, 6, 6), (4, 4), (2, 2), (1, 1), 2),  # total 2 with an even kernel
        ("max", (2, 3, 7, 8), (2, 2), (2, 2), None, None),  # odd H: one row of -inf at the bottom
        ("max", (1, 2, 9, 6), (3, 3), (2, 2), None, None),  # 3x3 stride 2: (1, 1) and (0, 1)
        ("max", (2, 2, 5, 11), (3, 2), (3, 2), None, None),  # stride 3 on H
        ("avg", (2, 3, 7, 8), (2, 2), (2, 2), None, None),
        ("avg", (1, 2, 9, 6), (3, 3), (2, 2), None, None),
        ("avg", (2, 2, 5, 11), (3, 2), (3, 2), None, None),
    ]
    cases, tensors = [], OrderedDict()
    for i, (op, shape, k, s, d, c_out) in enumerate(specs):
        x = torch.randn(*shape).requires_grad_()
        p = pads(x, k, s, d if d else (1, 1))
        if op == "conv":
            w = (torch.randn(c_out, shape[1], *k) * 0.3).requires_grad_()
            b = torch.randn(c_out).requires_grad_()
            y = F.conv2d(F.pad(x, p), w, b, stride=s, dilation=d)
        elif op == "max":
            y = F.max_pool2d(F.pad(x, p, value=float("-inf")), k, stride=s)
        else:
            ones = torch.ones(1, 1, *shape[2:])
            count = F.avg_pool2d(F.pad(ones, p), k, stride=s) * (k[0] * k[1])
            y = F.avg_pool2d(F.pad(x, p), k, stride=s) * (k[0] * k[1]) / count
        dy = torch.randn(*y.shape)
        y.backward(dy)
        case = {"op": op, "kernel": list(k), "stride": list(s),
                "padding": [[p[2], p[3]], [p[0], p[1]]]}
        key = f"{i}/"
        tensors[key + "x"] = np32(x)
        tensors[key + "y"] = np32(y)
        tensors[key + "dy"] = np32(dy)
        tensors[key + "dx"] = np32(x.grad)
        if op == "conv":
            case.update({"dilation": list(d), "out_channels": c_out})
            tensors[key + "w"] = np32(w)
            tensors[key + "b"] = np32(b)
            tensors[key + "dw"] = np32(w.grad)
            tensors[key + "db"] = np32(b.grad)
        cases.append(case)
    meta = {"generator": "tools/gen_keras_fixtures.py", "torch": torch.__version__,
            "cases": cases}
    path = os.path.join(OUT, "keras_same.cnnt")
    write_archive(path, tensors, meta)
    print(f"{path}: {len(cases)} cases")
    for c in cases:
        print(c)


if __name__ == "__main__":
    main()
