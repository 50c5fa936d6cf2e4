#!/usr/bin/env python3
"""The "model for many machines" table of docs/SCALING.md.

For each model: its parameters, the bytes that data-parallel training allreduces per step,
the compute time per image of a training step measured on this machine (cnn bench, one
thread), and, for N = 8 and N = 64 machines on 10 and 100 Gbit/s links, the batch per rank
at which the gradient allreduce costs 10 % of the step's compute (90 % scaling efficiency,
communication not overlapped) and the batch at which the two are equal.

Usage:
  scripts/scaling-model.py [--seconds S] [--repeat R] [--models a,b,...] [--cnn PATH]
                           [--json FILE]

Standard library only. The table goes to stdout; progress goes to stderr.
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile

SHIPPED = ["bn-gap", "dilated", "lenet5", "rgb-nested", "tutorial", "vgg-bn"]

# Module::pack_parameters rounds every parameter tensor up to Tensor::kAlignment (64 bytes).
PAD_FLOATS = 16
BYTES_PER_FLOAT = 4

MACHINES = [8, 64]
# Link speed in Gbit/s -> per-message latency alpha in seconds.
LINKS = [(10, 5e-6), (100, 2e-6)]
# Communication may cost at most this share of compute for the first batch column.
TARGET_SHARE = 0.10


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit("scaling-model: '%s' failed (exit %d):\n%s" % (" ".join(cmd), p.returncode,
                                                               p.stderr.strip()))
    return p.stdout


def padded(n):
    return (n + PAD_FLOATS - 1) // PAD_FLOATS * PAD_FLOATS


# Lines of the PyTorch-style printout ('cnn summary --print-model') of the layers that own
# parameters: Conv2d, Linear and BatchNorm2d. The summary's "Total params" checks the result.
LAYER = re.compile(r"(?:^|:\s)(Conv2d|Linear|BatchNorm2d)\((.*)\)\s*$")


def tensors_of(kind, args):
    """The numel of each parameter tensor of one layer, from its printed arguments."""
    if kind == "Conv2d":
        m = re.match(r"(\d+), (\d+), kernel_size=\((\d+), (\d+)\)", args)
        cin, cout, kh, kw = map(int, m.groups())
        g = re.search(r"groups=(\d+)", args)
        groups = int(g.group(1)) if g else 1
        out = [cout * (cin // groups) * kh * kw]
        if "bias=False" not in args:
            out.append(cout)
        return out
    if kind == "Linear":
        m = re.match(r"in_features=(\d+), out_features=(\d+), bias=(True|False)", args)
        fin, fout = int(m.group(1)), int(m.group(2))
        return [fout * fin] + ([fout] if m.group(3) == "True" else [])
    if kind == "BatchNorm2d":
        m = re.match(r"(\d+),", args)
        c = int(m.group(1))
        return [c, c] if "affine=True" in args else []
    raise AssertionError(kind)


def parameters(cnn, model):
    """(parameter count, padded count, tensor sizes) of a model, from 'cnn summary'."""
    text = run([cnn, "summary", "--model", model, "--print-model"])
    sizes = []
    for line in text.splitlines():
        m = LAYER.search(line.strip())
        if m:
            sizes += tensors_of(m.group(1), m.group(2))
    total = re.search(r"^Total params: ([\d,]+)", text, re.M)
    if not total:
        sys.exit("scaling-model: no 'Total params' in the summary of %s" % model)
    total = int(total.group(1).replace(",", ""))
    if sum(sizes) != total:
        sys.exit("scaling-model: the layers of %s that this script knows (Conv2d, Linear, "
                 "BatchNorm2d) hold %d parameters, the summary says %d: a layer with parameters "
                 "is missing from tensors_of()" % (model, sum(sizes), total))
    return total, sum(padded(n) for n in sizes), sizes


def bench(cnn, model, seconds):
    """Training images/s with one thread, and the batch the bench trains with."""
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        text = run([cnn, "bench", "--model", model, "--threads", "1", "--seconds", str(seconds),
                    "--json", path])
        with open(path) as f:
            figures = json.load(f)
    finally:
        os.unlink(path)
    m = re.search(r"training\s+\(batch (\d+)", text)
    return figures["train_images_per_second"], int(m.group(1)) if m else None


def comm_seconds(nbytes, n, gbits, alpha):
    """Ring allreduce: 2(N-1)/N of the buffer sent by each rank, and 2(N-1) latencies."""
    traffic = 2.0 * (n - 1) / n * nbytes
    return traffic / (gbits * 1e9 / 8.0) + 2 * (n - 1) * alpha, traffic


def fmt_int(n):
    return "{:,}".format(n)


def fmt_equal(b):
    """The (fractional) batch at which communication equals compute, about 2 digits."""
    if b >= 10:
        return fmt_int(int(round(b)))
    if b >= 1:
        return "%.1f" % b
    return "%.2g" % b


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=2.0,
                    help="seconds of each 'cnn bench' measurement (default 2)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="bench each model R times and keep the fastest training figure, "
                         "against other work on the machine (default 1)")
    ap.add_argument("--models", default=",".join(SHIPPED),
                    help="comma-separated shipped models or model files (default: all shipped)")
    ap.add_argument("--cnn", default="build/cnn", help="the cnn binary (default build/cnn)")
    ap.add_argument("--json", metavar="FILE", help="also write every figure as JSON here")
    a = ap.parse_args()
    if not (a.seconds > 0):
        ap.error("--seconds must be positive")
    if a.repeat < 1:
        ap.error("--repeat must be at least 1")
    models = [m for m in a.models.split(",") if m]
    if not models:
        ap.error("--models is empty")

    rows = []
    for model in models:
        print("scaling-model: %s ..." % model, file=sys.stderr, flush=True)
        count, padded_count, sizes = parameters(a.cnn, model)
        runs = [bench(a.cnn, model, a.seconds) for _ in range(a.repeat)]
        ips, train_batch = max(runs)
        per_image = 1.0 / ips
        nbytes = BYTES_PER_FLOAT * padded_count
        cases = []
        for n in MACHINES:
            for gbits, alpha in LINKS:
                t, traffic = comm_seconds(nbytes, n, gbits, alpha)
                equal = t / per_image  # b * per_image == t
                # Smallest whole b with t <= TARGET_SHARE * b * per_image. The small
                # tolerance keeps an exact quotient (in floating point) from rounding up.
                b90 = max(1, math.ceil(t / (TARGET_SHARE * per_image) * (1 - 1e-12)))
                cases.append({"machines": n, "gbit_per_s": gbits, "alpha_s": alpha,
                              "traffic_bytes_per_rank": traffic, "comm_seconds": t,
                              "batch_per_rank_90": b90, "global_batch_90": b90 * n,
                              "batch_per_rank_equal": equal})
        rows.append({"model": model, "parameters": count, "padded_parameters": padded_count,
                     "parameter_tensors": sizes, "bytes_per_step": nbytes,
                     "train_images_per_second": ips, "bench_train_batch": train_batch,
                     "train_images_per_second_runs": [r[0] for r in runs],
                     "seconds_per_image": per_image, "cases": cases})

    head = ["model", "parameters", "allreduced per step", "compute per image"]
    head += ["N=%d, %d Gbit/s" % (n, g) for n in MACHINES for g, _ in LINKS]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---"] + ["--:"] * (len(head) - 1)) + "|")
    for r in rows:
        cells = [r["model"], fmt_int(r["parameters"]),
                 "%s B" % fmt_int(r["bytes_per_step"]),
                 "%.1f us" % (r["seconds_per_image"] * 1e6)]
        cells += ["%s / %s" % (fmt_int(c["batch_per_rank_90"]),
                               fmt_equal(c["batch_per_rank_equal"])) for c in r["cases"]]
        print("| " + " | ".join(cells) + " |")

    if a.json:
        load = os.getloadavg() if hasattr(os, "getloadavg") else None
        out = {"assumptions": {"pad_floats": PAD_FLOATS, "bytes_per_float": BYTES_PER_FLOAT,
                               "links": [{"gbit_per_s": g, "alpha_s": al} for g, al in LINKS],
                               "machines": MACHINES, "target_comm_share": TARGET_SHARE,
                               "bench_seconds": a.seconds, "bench_repeat": a.repeat,
                               "bench_threads": 1},
               "load_average_after": load, "models": rows}
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
