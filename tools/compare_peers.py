#!/usr/bin/python3
"""Runs the same models in cnn, ONNX Runtime (CPU, npm onnxruntime-node) and libtorch (Debian's
libtorch, a C++ program) on this machine, in alternating rounds in one run, and prints for each
model the medians, ranges and ratios of:

  training throughput, batch 64, Adam       images/s   (cnn, libtorch; ONNX Runtime does not train)
  inference throughput, batch 1000          images/s   (all three)
  batch-1 inference latency                 us, median (all three)

Run on demand through scripts/compare-peers.sh (it builds everything first), not in CI.

Each model is read from its model file (models/*.json) by cnn, and built from the same file in
PyTorch by this script (same layers, same shapes; the parameter counts are compared), then
written once as TorchScript for libtorch and as ONNX (torch.onnx.export, opset 17) for ONNX
Runtime. Weights are random: speed does not depend on them. Each peer gets its best settings:
ONNX Runtime with every graph optimisation (it folds BatchNorm into the convolutions) and
`intraOpNumThreads` = threads; libtorch with `torch::jit::optimize_for_inference` (frozen,
BatchNorm folded, oneDNN where it chooses) under InferenceMode for inference, and its eager
autograd with torch::optim::Adam for training.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ["tutorial", "lenet5", "bn-gap", "vgg-bn", "dilated", "rgb-nested"]


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def build_torch(spec):
    """The model file's layers as a torch.nn.Sequential; the input's shape is followed layer by
    layer so that in_channels / in_features / num_features may be left out, as cnn allows."""
    import torch
    import torch.nn as nn

    def build(layers, x):
        mods = []
        for c in layers:
            t = c["type"]
            if t == "Sequential":
                m = build(c["layers"], x)
            elif t == "Conv2d":
                pad = c.get("padding", 0)
                pre = None
                if isinstance(pad, list) and pad and isinstance(pad[0], list):
                    (top, bottom), (left, right) = pad
                    pre, pad = nn.ZeroPad2d((left, right, top, bottom)), 0
                elif isinstance(pad, list):
                    pad = tuple(pad)
                conv = nn.Conv2d(x.shape[1], c["out_channels"], pair(c["kernel_size"]),
                                 stride=pair(c.get("stride", 1)), padding=pad,
                                 dilation=pair(c.get("dilation", 1)), groups=c.get("groups", 1),
                                 bias=c.get("bias", True))
                m = nn.Sequential(pre, conv) if pre else conv
            elif t == "Linear":
                m = nn.Linear(x.shape[-1], c["out_features"], bias=c.get("bias", True))
            elif t == "BatchNorm2d":
                m = nn.BatchNorm2d(x.shape[1], eps=c.get("eps", 1e-5), momentum=c.get("momentum", 0.1),
                                   affine=c.get("affine", True),
                                   track_running_stats=c.get("track_running_stats", True))
            elif t == "MaxPool2d":
                pad = c.get("padding", 0)
                if isinstance(pad, list) and pad and isinstance(pad[0], list):
                    raise SystemExit("compare_peers: per-side pooling padding has no PyTorch layer")
                m = nn.MaxPool2d(pair(c["kernel_size"]), stride=pair(c.get("stride", c["kernel_size"])),
                                 padding=pair(pad) if isinstance(pad, (int, list)) else pad,
                                 dilation=pair(c.get("dilation", 1)), ceil_mode=c.get("ceil_mode", False))
            elif t == "AvgPool2d":
                m = nn.AvgPool2d(pair(c["kernel_size"]), stride=pair(c.get("stride", c["kernel_size"])),
                                 padding=pair(c.get("padding", 0)), ceil_mode=c.get("ceil_mode", False),
                                 count_include_pad=c.get("count_include_pad", True),
                                 divisor_override=c.get("divisor_override"))
            elif t == "AdaptiveAvgPool2d":
                m = nn.AdaptiveAvgPool2d(c["output_size"])
            elif t == "Flatten":
                m = nn.Flatten(c.get("start_dim", 1), c.get("end_dim", -1))
            elif t == "Dropout":
                m = nn.Dropout(c.get("p", 0.5))
            elif t == "LeakyReLU":
                m = nn.LeakyReLU(c.get("negative_slope", 0.01))
            elif t == "GELU":
                m = nn.GELU(approximate=c.get("approximate", "none"))
            elif t in ("Softmax", "LogSoftmax"):
                m = getattr(nn, t)(dim=c.get("dim", 1))
            elif t in ("ReLU", "Tanh", "Sigmoid", "SiLU", "Identity"):
                m = getattr(nn, t)()
            else:
                raise SystemExit(f"compare_peers: no PyTorch layer for '{t}'")
            with torch.no_grad():
                x = m(x)
            mods.append(m)
        return nn.Sequential(*mods)

    torch.manual_seed(0)
    return build(spec["layers"], torch.zeros([2] + spec["input"]))


def prepare(name, tmp, args):
    """Writes name.pt (TorchScript) and name.onnx; returns (input shape, parameter count)."""
    import torch
    path = name if name.endswith(".json") else os.path.join(ROOT, "models", name + ".json")
    spec = json.load(open(path))
    model = build_torch(spec)
    params = sum(p.numel() for p in model.parameters())
    base = os.path.join(tmp, os.path.basename(name).removesuffix(".json"))
    torch.jit.script(model).save(base + ".pt")
    model.eval()
    torch.onnx.export(model, torch.rand([1] + spec["input"]), base + ".onnx", opset_version=17,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    return spec["input"], params, base


def run_json(cmd, env):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS),
                    help="comma-separated shipped model names or model-file paths (default: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds; medians are kept")
    ap.add_argument("--cnn", default=os.path.join(ROOT, "build", "cnn"))
    ap.add_argument("--libtorch-bench", default=os.path.join(ROOT, "build", "peers", "libtorch_bench"))
    ap.add_argument("--ort-bench", default=os.path.join(ROOT, "tests", "peers", "bench_onnx.mjs"))
    ap.add_argument("--json", help="write every run's figures here")
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    models = [m for m in args.models.split(",") if m]
    systems = ["cnn", "onnxruntime", "libtorch"]
    runs = {m: {s: [] for s in systems} for m in models}
    peak = []
    with tempfile.TemporaryDirectory() as tmp:
        prepared = {}
        for m in models:
            shape, params, base = prepare(m, tmp, args)
            prepared[m] = (shape, base)
            # cnn builds the same file: its parameter count must be PyTorch's.
            summary = subprocess.run([args.cnn, "summary", "--model", m], check=True, capture_output=True,
                                     text=True).stdout
            digits = f"{params:,}"
            if digits not in summary:
                raise SystemExit(f"compare_peers: {m}: PyTorch's model has {digits} parameters, "
                                 f"cnn's summary does not say so:\n{summary}")
            print(f"{m}: input {shape}, {digits} parameters in both", file=sys.stderr)
        for r in range(args.rounds):
            for m in models:
                shape, base = prepared[m]
                out = os.path.join(tmp, "cnn.json")
                subprocess.run([args.cnn, "bench", "--model", m, "--threads", str(args.threads),
                                "--seconds", str(args.seconds), "--json", out], check=True,
                               stdout=subprocess.DEVNULL, env=env)
                c = json.load(open(out))
                peak.append(c["peak_gflops"])
                runs[m]["cnn"].append({"train": c["train_images_per_second"],
                                       "infer": c["infer_images_per_second"],
                                       "latency_us": c["latency_us_median"],
                                       "train_flops": c["flops_training_per_image"],
                                       "infer_flops": c["flops_forward_per_image"]})
                runs[m]["onnxruntime"].append(run_json(
                    ["node", args.ort_bench, base + ".onnx", ",".join(map(str, shape)), str(args.threads),
                     str(args.seconds)], env))
                runs[m]["libtorch"].append(run_json(
                    [args.libtorch_bench, base + ".pt", ",".join(map(str, shape)), str(args.threads),
                     str(args.seconds)], env))
                print(f"round {r + 1}/{args.rounds} {m}: " + "; ".join(
                    f"{s} " + " ".join(f"{k}={v:.1f}" for k, v in runs[m][s][-1].items()
                                      if isinstance(v, float) and "flops" not in k)
                    for s in systems), file=sys.stderr)

    peak_med = statistics.median(peak)
    print(f"{os.cpu_count()} cores, {args.threads} threads, medians of {args.rounds} alternating rounds "
          f"(range in brackets); measured FMA peak {peak_med:.0f} GFLOP/s (cnn bench)")
    figures = [("train", "training, batch 64, Adam (images/s)", True),
               ("infer", "inference, batch 1000 (images/s)", True),
               ("latency_us", "batch-1 latency (us)", False)]
    table = []
    for m in models:
        print(f"\n{m}")
        print(f"  {'figure':38} {'cnn':>20} {'ONNX Runtime':>20} {'libtorch':>20} {'vs ORT':>7} {'vs libtorch':>11}")
        for key, label, higher in figures:
            cells, med = [], {}
            for s in systems:
                vals = [x[key] for x in runs[m][s] if x.get(key) is not None]
                if not vals:
                    cells.append("-")
                    continue
                med[s] = statistics.median(vals)
                cells.append(f"{med[s]:,.1f} [{min(vals):,.0f}-{max(vals):,.0f}]" if key != "latency_us" else
                             f"{med[s]:.1f} [{min(vals):.1f}-{max(vals):.1f}]")
            ratio = {}
            for s in ("onnxruntime", "libtorch"):
                if s in med and "cnn" in med:
                    ratio[s] = med["cnn"] / med[s]
            print(f"  {label:38} {cells[0]:>20} {cells[1]:>20} {cells[2]:>20} "
                  f"{(f'{ratio[s]:.2f}x' if (s := 'onnxruntime') in ratio else '-'):>7} "
                  f"{(f'{ratio[s]:.2f}x' if (s := 'libtorch') in ratio else '-'):>11}")
            table.append({"model": m, "figure": key, "median": med, "ratio_cnn_over": ratio})
        c = runs[m]["cnn"]
        train_gf = statistics.median(x["train"] for x in c) * c[0]["train_flops"] / 1e9
        infer_gf = statistics.median(x["infer"] for x in c) * c[0]["infer_flops"] / 1e9
        print(f"  cnn: training {train_gf:.1f} GFLOP/s ({100 * train_gf / peak_med:.0f} % of peak), "
              f"inference {infer_gf:.1f} GFLOP/s ({100 * infer_gf / peak_med:.0f} %)")
    print("\nratios: throughput cnn/peer (higher is better for cnn); latency cnn/peer (lower is better)")
    if args.json:
        json.dump({"threads": args.threads, "rounds": args.rounds, "peak_gflops": peak_med, "runs": runs,
                   "table": table}, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
