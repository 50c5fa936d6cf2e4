#!/usr/bin/python3
"""Writes the golden test fixtures under tests/fixtures/ from PyTorch.

Run with Debian's python3-torch (scripts/gen-fixtures.sh installs it). The fixtures are committed,
so the tests need no PyTorch. Every case stores its inputs, the options, a random upstream
gradient dy, PyTorch's output and PyTorch's gradients, in the tensor archive format
(tools/archive.py). Re-running this script with the same PyTorch reproduces the files.

    tools/gen_fixtures.py                  # every fixture
    tools/gen_fixtures.py avgpool2d gelu   # only these files (tests/fixtures/<name>.cnnt)

Every generator runs either way (they share one random stream), so a file written alone is the
same as when all are written.
"""
import os
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from archive import write_archive  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
torch.set_num_threads(1)
# The fixture names to write; None: all.
ONLY = None


def np32(t):
    return t.detach().cpu().numpy().astype(np.float32)


def save(name, cases, tensors):
    if ONLY is not None and name not in ONLY:
        return
    meta = {"generator": "tools/gen_fixtures.py", "torch": torch.__version__, "cases": cases}
    path = os.path.join(OUT, name + ".cnnt")
    write_archive(path, tensors, meta)
    print(f"{path}: {len(cases)} cases")


def rand(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def pair(v):
    return list(v) if isinstance(v, (tuple, list)) else [v, v]


def gen_conv2d():
    # (N, C_in, H, W, C_out, kernel, stride, padding, dilation, groups, bias)
    specs = [
        (2, 1, 12, 12, 4, 3, 1, 0, 1, 1, True),  # the tutorial's conv1 shape, smaller image
        (3, 3, 9, 7, 5, 3, 2, 1, 1, 1, True),  # stride 2, padding, non-square input
        (2, 2, 11, 10, 3, (3, 2), 3, (2, 1), 2, 1, True),  # stride 3, dilation 2, non-square kernel
        (2, 2, 8, 9, 3, 3, 1, "same", 3, 1, True),  # dilation 3, 'same'
        (2, 4, 7, 8, 6, (2, 3), (2, 1), 0, 1, 2, False),  # groups 2, no bias
        (1, 3, 9, 8, 3, (4, 2), 1, "same", (1, 2), 3, True),  # depthwise, 'same' with even kernel
        (2, 2, 5, 13, 2, (1, 5), (1, 3), "valid", 1, 1, True),  # 'valid', odd sizes
        (4, 3, 6, 6, 2, 1, 1, 0, 1, 1, True),  # 1x1 kernel, batch 4
        (2, 6, 10, 11, 4, 3, (3, 2), (1, 2), (2, 3), 2, True),  # everything at once
    ]
    cases, tensors = [], OrderedDict()
    for i, (n, cin, h, w, cout, k, s, p, d, g, bias) in enumerate(specs):
        conv = nn.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, groups=g, bias=bias)
        x = rand(n, cin, h, w).requires_grad_()
        y = conv(x)
        dy = rand(*y.shape)
        y.backward(dy)
        cases.append({"kernel": pair(k), "stride": pair(s),
                      "padding": p if isinstance(p, str) else pair(p),
                      "dilation": pair(d), "groups": g, "bias": bias})
        tensors[f"{i}/x"] = np32(x)
        tensors[f"{i}/w"] = np32(conv.weight)
        if bias:
            tensors[f"{i}/b"] = np32(conv.bias)
            tensors[f"{i}/db"] = np32(conv.bias.grad)
        tensors[f"{i}/y"] = np32(y)
        tensors[f"{i}/dy"] = np32(dy)
        tensors[f"{i}/dx"] = np32(x.grad)
        tensors[f"{i}/dw"] = np32(conv.weight.grad)
    save("conv2d", cases, tensors)


def gen_maxpool2d():
    # (shape, kernel, stride, padding, dilation, ceil_mode, fill)
    specs = [
        ((2, 3, 13, 13), 2, 2, 1, 1, False, None),  # the tutorial's pool, odd input
        ((2, 2, 9, 10), 3, 2, 1, 1, True, None),  # ceil_mode, stride 2
        ((1, 2, 11, 7), (3, 2), (3, 1), (1, 0), (2, 1), False, None),  # stride 3, dilation 2
        ((1, 1, 4, 4), 2, 3, 1, 1, True, None),  # ceil_mode drops a window starting in padding
        ((3, 2, 10, 10), 3, 1, 0, 3, False, None),  # dilation 3, batch 3
        ((2, 1, 6, 9), (2, 4), None, (1, 2), 1, True, None),  # default stride, non-square
        ((1, 2, 5, 5), 2, 2, 1, 1, False, -1.0),  # -inf padding: an all -1 input stays -1
        ((2, 3, 8, 7), 5, 2, 2, 1, True, None),  # padding = kernel // 2
        ((1, 2, 12, 9), 3, (2, 3), 1, (2, 2), True, None),  # dilation and ceil_mode together
    ]
    cases, tensors = [], OrderedDict()
    for i, (shape, k, s, p, d, ceil, fill) in enumerate(specs):
        x = (torch.full(shape, fill) if fill is not None else rand(*shape)).requires_grad_()
        y = F.max_pool2d(x, k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
        dy = rand(*y.shape)
        y.backward(dy)
        cases.append({"kernel": pair(k), "stride": pair(s if s is not None else k),
                      "padding": pair(p), "dilation": pair(d), "ceil_mode": ceil})
        tensors[f"{i}/x"] = np32(x)
        tensors[f"{i}/y"] = np32(y)
        tensors[f"{i}/dy"] = np32(dy)
        tensors[f"{i}/dx"] = np32(x.grad)
    save("maxpool2d", cases, tensors)


def gen_linear():
    specs = [((4, 7), 3, True), ((1, 1568), 32, True), ((64, 32), 10, True),
             ((5, 13), 1, False), ((2, 3, 6), 4, True), ((3, 1), 9, True)]
    cases, tensors = [], OrderedDict()
    for i, (xshape, out, bias) in enumerate(specs):
        lin = nn.Linear(xshape[-1], out, bias=bias)
        x = rand(*xshape).requires_grad_()
        y = lin(x)
        dy = rand(*y.shape)
        y.backward(dy)
        cases.append({"bias": bias})
        tensors[f"{i}/x"] = np32(x)
        tensors[f"{i}/w"] = np32(lin.weight)
        if bias:
            tensors[f"{i}/b"] = np32(lin.bias)
            tensors[f"{i}/db"] = np32(lin.bias.grad)
        tensors[f"{i}/y"] = np32(y)
        tensors[f"{i}/dy"] = np32(dy)
        tensors[f"{i}/dx"] = np32(x.grad)
        tensors[f"{i}/dw"] = np32(lin.weight.grad)
    save("linear", cases, tensors)


def gen_unary(name, fn, specs, extra=lambda spec: {}):
    """specs: (shape, option) pairs; fn(x, option) -> y."""
    cases, tensors = [], OrderedDict()
    for i, (shape, opt) in enumerate(specs):
        x = rand(*shape)
        if name == "softmax_large":
            x = x * 300.0
        x.requires_grad_()
        y = fn(x, opt)
        dy = rand(*y.shape)
        y.backward(dy)
        cases.append({"option": opt, **extra((shape, opt))})
        tensors[f"{i}/x"] = np32(x)
        tensors[f"{i}/y"] = np32(y)
        tensors[f"{i}/dy"] = np32(dy)
        tensors[f"{i}/dx"] = np32(x.grad)
    return cases, tensors


def gen_simple_ops():
    relu_specs = [((2, 3, 4, 5), 0), ((7,), 0), ((3, 11), 0), ((1, 16, 26, 26), 0),
                  ((64, 32), 0), ((2, 1, 3, 3), 0)]
    save("relu", *gen_unary("relu", lambda x, _: F.relu(x), relu_specs))

    flatten_specs = [((2, 3, 4, 5), [1, -1]), ((2, 3, 4, 5), [0, -1]), ((2, 3, 4, 5), [1, 2]),
                     ((2, 3, 4, 5), [-3, -2]), ((6,), [0, 0]), ((2, 1, 3), [2, 2])]
    save("flatten", *gen_unary("flatten", lambda x, o: torch.flatten(x, o[0], o[1]),
                               flatten_specs))

    sm_specs = [((4, 10), 1), ((4, 10), 0), ((2, 3, 5), -1), ((2, 3, 5), 1), ((1, 1), 0),
                ((3, 4, 2, 5), 2)]
    save("softmax", *gen_unary("softmax", lambda x, d: F.softmax(x, d), sm_specs))
    save("log_softmax", *gen_unary("log_softmax", lambda x, d: F.log_softmax(x, d), sm_specs))
    # Logits in the hundreds: a naive exp overflows.
    big = [((3, 7), 1), ((5, 4), 0), ((2, 3, 6), -1), ((6, 10), 1), ((1, 3), 1), ((4, 2), 1)]
    c1, t1 = gen_unary("softmax_large", lambda x, d: F.softmax(x, d), big)
    save("softmax_large", c1, t1)


def gen_dropout():
    specs = [((64, 32), 0.3), ((4, 5, 6), 0.5), ((10, 10), 0.0), ((20, 20), 0.9),
             ((3, 7), 1.0), ((2, 3, 4, 5), 0.1)]
    cases, tensors = [], OrderedDict()
    for i, (shape, p) in enumerate(specs):
        # Away from zero, so that the kept elements are exactly the non-zero outputs.
        x = (rand(*shape).abs() + 0.5).requires_grad_()
        y = F.dropout(x, p, training=True)
        dy = rand(*y.shape)
        y.backward(dy)
        cases.append({"p": p})
        tensors[f"{i}/x"] = np32(x)
        tensors[f"{i}/mask"] = np32((y != 0).float())
        tensors[f"{i}/y"] = np32(y)
        tensors[f"{i}/dy"] = np32(dy)
        tensors[f"{i}/dx"] = np32(x.grad)
    save("dropout", cases, tensors)


def gen_argmax():
    specs = [((5, 10), 1, True), ((3, 4, 5), 0, False), ((3, 4, 5), -1, True), ((7,), 0, False),
             ((2, 3, 4), 1, True), ((6, 2), 1, True)]
    cases, tensors = [], OrderedDict()
    for i, (shape, dim, ties) in enumerate(specs):
        # Small integers make ties common: PyTorch returns the first maximum.
        x = torch.randint(0, 3, shape).float() if ties else rand(*shape)
        cases.append({"dim": dim})
        tensors[f"{i}/x"] = np32(x)
        tensors[f"{i}/indices"] = torch.argmax(x, dim).float().numpy()
    save("argmax", cases, tensors)


def gen_cross_entropy():
    specs = [(64, 10, 1.0), (1, 10, 1.0), (5, 3, 1.0), (7, 2, 1.0), (3, 100, 1.0), (6, 10, 50.0)]
    cases, tensors = [], OrderedDict()
    for i, (n, c, scale) in enumerate(specs):
        logits = (rand(n, c) * scale).requires_grad_()
        target = torch.randint(0, c, (n,))
        loss = F.cross_entropy(logits, target)
        loss.backward()
        cases.append({})
        tensors[f"{i}/logits"] = np32(logits)
        tensors[f"{i}/targets"] = target.float().numpy()
        tensors[f"{i}/loss"] = np.array([loss.item()], np.float32)
        tensors[f"{i}/dlogits"] = np32(logits.grad)
    save("cross_entropy", cases, tensors)


def gen_optim():
    configs = [
        ("sgd", {"lr": 0.1}),
        ("sgd", {"lr": 0.05, "momentum": 0.9}),
        ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-2}),
        ("sgd", {"lr": 0.1, "momentum": 0.5, "dampening": 0.3}),
        ("adam", {"lr": 1e-3}),
        ("adam", {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
        ("adamw", {"lr": 1e-3}),
        ("adamw", {"lr": 1e-2, "betas": (0.85, 0.995), "weight_decay": 0.5}),
    ]
    steps = 6
    cases, tensors = [], OrderedDict()
    for i, (kind, opts) in enumerate(configs):
        params = [torch.randn(5, 4).requires_grad_(), torch.randn(3).requires_grad_()]
        for j, p in enumerate(params):
            tensors[f"{i}/p{j}/init"] = np32(p)
        cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind]
        opt = cls(params, **opts)
        for t in range(steps):
            for j, p in enumerate(params):
                p.grad = torch.randn_like(p)
                tensors[f"{i}/p{j}/grad{t}"] = np32(p.grad)
            opt.step()
            for j, p in enumerate(params):
                tensors[f"{i}/p{j}/after{t}"] = np32(p)
        cases.append({"kind": kind, "steps": steps,
                      **{k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.items()}})
    save("optim", cases, tensors)


class MaskDropout(nn.Module):
    """Dropout whose masks are given, so that cnn can apply the very same ones."""

    def __init__(self, p):
        super().__init__()
        self.p, self.masks = p, []

    def forward(self, x):
        return x * self.masks.pop(0) / (1 - self.p) if self.training else x


class CNN(nn.Module):
    """The tutorial's model, as its notebook defines it."""

    def __init__(self, num_label=10):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(1, 16, kernel_size=3), nn.ReLU(),
                                   nn.MaxPool2d(kernel_size=2, stride=2, padding=1))
        self.conv2 = nn.Sequential(nn.Conv2d(16, 32, kernel_size=3), nn.ReLU(),
                                   nn.MaxPool2d(kernel_size=2, stride=2, padding=1))
        self.classifier = nn.Sequential(nn.Flatten(1, -1), nn.Linear(7 * 7 * 32, 32), nn.ReLU(),
                                        MaskDropout(p=0.3), nn.Linear(32, num_label))

    def forward(self, x):
        return self.classifier(self.conv2(self.conv1(x)))


def gen_model():
    model = CNN()
    tensors = OrderedDict()
    for name, p in model.state_dict().items():
        tensors[f"init/{name}"] = np32(p)
    # MNIST-shaped: mostly black, strokes in [0, 1].
    x = torch.rand(64, 1, 28, 28)
    x = torch.where(torch.rand(64, 1, 28, 28) < 0.8, torch.zeros_like(x), x)
    target = torch.randint(0, 10, (64,))
    tensors["x"] = np32(x)
    tensors["targets"] = target.float().numpy()
    steps = 10
    masks = [(torch.rand(64, 32) >= 0.3).float() for _ in range(steps + 1)]
    for t, m in enumerate(masks):
        tensors[f"mask{t}"] = np32(m)
    model.classifier[3].masks = list(masks)
    # Step 0: one forward and backward, every gradient kept.
    logits = model(x)
    loss = F.cross_entropy(logits, target)
    loss.backward()
    tensors["logits"] = np32(logits)
    tensors["loss"] = np.array([loss.item()], np.float32)
    for name, p in model.named_parameters():
        tensors[f"grad/{name}"] = np32(p.grad)
    # Then Adam steps, the loss at each.
    model.zero_grad()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    tensors["adam_losses"] = np.array(losses, np.float32)
    for name, p in model.state_dict().items():
        tensors[f"final/{name}"] = np32(p)
    save("tutorial_model", [{"steps": steps, "lr": 1e-3}], tensors)


def gen_elementwise(name, fn, specs):
    """specs: (shape, option, scale): x ~ scale * N(0, 1); fn(x, option) -> y."""
    cases, tensors = [], OrderedDict()
    for i, (shape, opt, scale) in enumerate(specs):
        x = (rand(*shape) * scale).requires_grad_()
        y = fn(x, opt)
        dy = rand(*y.shape)
        y.backward(dy)
        cases.append({"option": opt, "scale": scale})
        tensors[f"{i}/x"] = np32(x)
        tensors[f"{i}/y"] = np32(y)
        tensors[f"{i}/dy"] = np32(dy)
        tensors[f"{i}/dx"] = np32(x.grad)
    save(name, cases, tensors)


def gen_activations():
    torch.manual_seed(101)
    # Odd shapes, batch > 1; a wide input (scale 6) reaches the saturated tails.
    shapes = [(2, 3, 5, 7), (3, 11), (4, 1, 9, 9), (2, 5, 3), (5, 13), (3, 2, 7, 5)]
    scales = [1.0, 3.0, 1.0, 6.0, 0.5, 2.0]
    none = [(s, None, k) for s, k in zip(shapes, scales)]
    gen_elementwise("tanh", lambda x, _: torch.tanh(x), none)
    gen_elementwise("sigmoid", lambda x, _: torch.sigmoid(x), none)
    gen_elementwise("silu", lambda x, _: F.silu(x), none)
    gen_elementwise("identity", lambda x, _: nn.Identity()(x) * 1.0, none)
    slopes = [0.01, 0.2, 0.0, 1.5, -0.3, 0.01]
    gen_elementwise("leaky_relu", lambda x, a: F.leaky_relu(x, a),
                    [(s, a, k) for s, a, k in zip(shapes, slopes, scales)])
    forms = ["none", "tanh", "none", "tanh", "none", "tanh"]
    gen_elementwise("gelu", lambda x, a: F.gelu(x, approximate=a),
                    [(s, a, k) for s, a, k in zip(shapes, forms, scales)])


def gen_avgpool2d():
    torch.manual_seed(102)
    # (shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    specs = [
        ((2, 3, 13, 13), 2, 2, 1, False, True, None),  # the tutorial's pool geometry
        ((2, 2, 9, 10), 3, 2, 1, True, True, None),  # ceil_mode: a last window past the padding
        ((2, 2, 9, 10), 3, 2, 1, True, False, None),  # the same, padding not counted
        ((3, 1, 11, 7), (3, 2), (3, 1), (1, 0), False, False, None),  # non-square, stride 3
        ((2, 2, 6, 9), (2, 4), None, (1, 2), True, True, None),  # default stride
        ((2, 3, 8, 7), 5, 2, 2, True, True, 7),  # divisor_override
        ((2, 2, 5, 5), 4, 3, 2, True, False, None),  # ceil_mode window starting in the padding
        ((3, 2, 10, 11), (3, 5), (2, 3), (1, 2), True, True, None),  # everything at once
        ((1, 2, 7, 6), 1, 2, 0, True, True, None),  # 1x1 kernel, stride 2
    ]
    cases, tensors = [], OrderedDict()
    for i, (shape, k, s, p, ceil, cip, div) in enumerate(specs):
        x = rand(*shape).requires_grad_()
        y = F.avg_pool2d(x, k, stride=s, padding=p, ceil_mode=ceil, count_include_pad=cip,
                         divisor_override=div)
        dy = rand(*y.shape)
        y.backward(dy)
        cases.append({"kernel": pair(k), "stride": pair(s if s is not None else k),
                      "padding": pair(p), "ceil_mode": ceil, "count_include_pad": cip,
                      "divisor_override": div})
        tensors[f"{i}/x"] = np32(x)
        tensors[f"{i}/y"] = np32(y)
        tensors[f"{i}/dy"] = np32(dy)
        tensors[f"{i}/dx"] = np32(x.grad)
    save("avgpool2d", cases, tensors)


def gen_adaptive_avgpool2d():
    torch.manual_seed(103)
    specs = [
        ((2, 3, 7, 9), (3, 4)),  # windows of unequal size that overlap
        ((2, 2, 5, 5), 1),  # global average
        ((3, 2, 10, 7), (4, 3)),
        ((2, 3, 6, 6), 6),  # the identity
        ((2, 1, 4, 5), (7, 8)),  # larger than the input: windows repeat elements
        ((2, 4, 13, 11), (5, 2)),
    ]
    cases, tensors = [], OrderedDict()
    for i, (shape, out) in enumerate(specs):
        x = rand(*shape).requires_grad_()
        y = F.adaptive_avg_pool2d(x, out)
        dy = rand(*y.shape)
        y.backward(dy)
        cases.append({"output_size": pair(out)})
        tensors[f"{i}/x"] = np32(x)
        tensors[f"{i}/y"] = np32(y)
        tensors[f"{i}/dy"] = np32(dy)
        tensors[f"{i}/dx"] = np32(x.grad)
    save("adaptive_avgpool2d", cases, tensors)


def gen_batchnorm2d():
    torch.manual_seed(104)
    # (shape, eps, momentum, affine, track_running_stats, training, offset)
    specs = [
        ((4, 3, 5, 7), 1e-5, 0.1, True, True, True, 0.0),  # the defaults, one training step
        ((2, 5, 3, 3), 1e-3, 0.3, True, True, True, 0.0),
        ((3, 4, 6, 5), 1e-5, 0.1, False, True, True, 0.0),  # affine=False
        ((2, 3, 7, 5), 1e-5, 0.1, True, True, False, 0.0),  # evaluation: running statistics
        ((3, 2, 4, 9), 0.1, 0.5, False, True, False, 0.0),  # evaluation, affine=False
        ((2, 3, 5, 5), 1e-5, 0.1, True, False, False, 0.0),  # no running stats: batch's in eval
        ((5, 2, 1, 1), 1e-5, 1.0, True, True, True, 0.0),  # one pixel a channel, momentum 1
        ((2, 4, 9, 7), 1e-5, 0.0, True, True, True, 20.0),  # far from zero mean, momentum 0
    ]
    cases, tensors = [], OrderedDict()
    for i, (shape, eps, mom, affine, track, training, offset) in enumerate(specs):
        c = shape[1]
        bn = nn.BatchNorm2d(c, eps=eps, momentum=mom, affine=affine, track_running_stats=track)
        with torch.no_grad():
            if affine:
                bn.weight.copy_(rand(c) * 0.5 + 1.0)
                bn.bias.copy_(rand(c))
            if track:
                bn.running_mean.copy_(rand(c))
                bn.running_var.copy_(torch.rand(c) + 0.5)
        bn.train(training)
        k = f"{i}/"
        for name, t in bn.state_dict().items():
            tensors[k + "before/" + name] = np32(t.float())
        x = (rand(*shape) * 2.0 + offset).requires_grad_()
        y = bn(x)
        dy = rand(*y.shape)
        y.backward(dy)
        cases.append({"eps": eps, "momentum": mom, "affine": affine,
                      "track_running_stats": track, "training": training})
        tensors[k + "x"] = np32(x)
        tensors[k + "y"] = np32(y)
        tensors[k + "dy"] = np32(dy)
        tensors[k + "dx"] = np32(x.grad)
        if affine:
            tensors[k + "dw"] = np32(bn.weight.grad)
            tensors[k + "db"] = np32(bn.bias.grad)
        for name, t in bn.state_dict().items():
            tensors[k + "after/" + name] = np32(t.float())
    save("batchnorm2d", cases, tensors)


def main():
    global ONLY
    ONLY = set(sys.argv[1:]) or None
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(20261127)
    gen_conv2d()
    gen_maxpool2d()
    gen_linear()
    gen_simple_ops()
    gen_dropout()
    gen_argmax()
    gen_cross_entropy()
    gen_optim()
    gen_model()
    # Each seeds itself: adding one never changes another's file.
    gen_activations()
    gen_avgpool2d()
    gen_adaptive_avgpool2d()
    gen_batchnorm2d()


if __name__ == "__main__":
    main()
