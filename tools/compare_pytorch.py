#!/usr/bin/python3
"""Runs the tutorial's model in PyTorch and in cnn, one after the other on this machine, with the
same batch sizes and thread count, and prints both figures and their ratio for each row of
docs/BENCHMARKS.md. Run on demand (scripts/compare-pytorch.sh), not in CI.

  training throughput, batch 64, Adam         images/s
  inference throughput, batch 1000            images/s
  batch-1 inference latency                   microseconds (median)
  peak RSS of an MNIST training run           MiB (one epoch of the tutorial's recipe, real data)
  wall time to 99.0 % test accuracy (cnn)     seconds from a cold start
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The tutorial's model, as both PyTorch programs below define it.
TORCH_MODEL = r"""
import torch, torch.nn as nn
class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2, 2, 1))
        self.conv2 = nn.Sequential(nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2, 2, 1))
        self.classifier = nn.Sequential(nn.Flatten(1, -1), nn.Linear(7 * 7 * 32, 32), nn.ReLU(),
                                        nn.Dropout(0.3), nn.Linear(32, 10))
    def forward(self, x):
        return self.classifier(self.conv2(self.conv1(x)))
"""

TORCH_TRAIN = TORCH_MODEL + r"""
import sys, time, json, numpy as np, torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(int(sys.argv[1]))
data_dir, epochs = sys.argv[2], int(sys.argv[3])
def idx(path, offset):
    return np.frombuffer(open(path, 'rb').read(), np.uint8, offset=offset)
x = torch.from_numpy(idx(data_dir + '/train-images-idx3-ubyte', 16).reshape(-1, 1, 28, 28).copy())
y = torch.from_numpy(idx(data_dir + '/train-labels-idx1-ubyte', 8).astype(np.int64))
model = CNN(); opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64, shuffle=True)
for _ in range(epochs):
    for xb, yb in loader:
        opt.zero_grad(); F.cross_entropy(model(xb.float() / 255), yb).backward(); opt.step()
"""

TORCH_BENCH = TORCH_MODEL + r"""
import sys, time, json, torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(int(sys.argv[1])); seconds = float(sys.argv[2])
torch.manual_seed(0); model = CNN(); opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.rand(64, 1, 28, 28); y = torch.randint(0, 10, (64,))
def step():
    opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()
for _ in range(10): step()
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < seconds: step(); n += 1
train = n * 64 / (time.perf_counter() - t0)
model.eval(); xb = torch.rand(1000, 1, 28, 28); x1 = torch.rand(1, 1, 28, 28)
with torch.no_grad():
    model(xb); n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds: model(xb); n += 1
    infer = n * 1000 / (time.perf_counter() - t0)
    for _ in range(50): model(x1)
    lat, t0 = [], time.perf_counter()
    while time.perf_counter() - t0 < seconds or len(lat) < 100:
        t = time.perf_counter(); model(x1); lat.append((time.perf_counter() - t) * 1e6)
lat.sort()
print(json.dumps({"train": train, "infer": infer, "latency_us": lat[len(lat) // 2]}))
"""


def child_peak_rss_mib(cmd, env=None):
    """Runs cmd to completion; returns (its own peak RSS in MiB, wall seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[0]} failed with status {status}")
    return usage.ru_maxrss / 1024.0, wall


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0, help="per throughput measurement")
    ap.add_argument("--cnn", default=os.path.join(ROOT, "build", "cnn"))
    ap.add_argument("--data-dir", default=os.path.join(ROOT, "data", "mnist"))
    ap.add_argument("--repeat", type=int, default=3, help="alternating runs of each benchmark; medians are kept")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--skip-time-to-99", action="store_true")
    ap.add_argument("--json", help="write all figures here")
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    rows = []

    # The two run in turn, --repeat times, and each figure is the median of its runs: on a
    # shared machine one run alone can be off by a third.
    torch_runs, cnn_runs = [], []
    for _ in range(args.repeat):
        torch_runs.append(json.loads(subprocess.run(
            [sys.executable, "-c", TORCH_BENCH, str(args.threads), str(args.seconds)],
            check=True, capture_output=True, text=True, env=env).stdout))
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "bench.json")
            subprocess.run([args.cnn, "bench", "--threads", str(args.threads), "--seconds", str(args.seconds),
                            "--json", out], check=True, stdout=subprocess.DEVNULL, env=env)
            cnn_runs.append(json.load(open(out)))
    torch_fig = {k: statistics.median(r[k] for r in torch_runs) for k in torch_runs[0]}
    cnn_fig = dict(cnn_runs[0])
    for k, v in cnn_runs[0].items():
        if isinstance(v, (int, float)):
            cnn_fig[k] = statistics.median(r[k] for r in cnn_runs)
    rows.append(("training throughput, batch 64, Adam (images/s)", torch_fig["train"],
                 cnn_fig["train_images_per_second"], "higher"))
    rows.append(("inference throughput, batch 1000 (images/s)", torch_fig["infer"],
                 cnn_fig["infer_images_per_second"], "higher"))
    rows.append(("batch-1 inference latency (us, median)", torch_fig["latency_us"],
                 cnn_fig["latency_us_median"], "lower"))

    if not args.skip_rss:
        with tempfile.TemporaryDirectory() as tmp:
            cnn_rss, _ = child_peak_rss_mib([args.cnn, "train", "--epochs", "1", "--threads", str(args.threads),
                                             "--data-dir", args.data_dir, "--quiet",
                                             "--out", os.path.join(tmp, "m.cnnt")], env)
            torch_rss, _ = child_peak_rss_mib([sys.executable, "-c", TORCH_TRAIN, str(args.threads),
                                               args.data_dir, "1"], env)
        rows.append(("peak RSS, one epoch of MNIST training (MiB)", torch_rss, cnn_rss, "lower"))

    time99 = None
    if not args.skip_time_to_99:
        with tempfile.TemporaryDirectory() as tmp:
            summary = os.path.join(tmp, "t.json")
            t0 = time.perf_counter()
            subprocess.run([args.cnn, "train", "--epochs", "8", "--schedule", "onecycle", "--lr", "4e-3",
                            "--threads", str(args.threads), "--data-dir", args.data_dir, "--quiet",
                            "--out", os.path.join(tmp, "m.cnnt"), "--json", summary],
                           check=True, stdout=subprocess.DEVNULL, env=env)
            wall = time.perf_counter() - t0
            acc = json.load(open(summary))["final_test_accuracy"]
        time99 = {"seconds": wall, "test_accuracy": acc}

    print(f"machine: {os.cpu_count()} cores, {args.threads} threads; {cnn_fig['simd']}; "
          f"measured FMA peak {cnn_fig['peak_gflops']:.1f} GFLOP/s; medians of {args.repeat} alternating runs")
    print(f"{'figure':50} {'PyTorch':>12} {'cnn':>12} {'ratio':>8}")
    for name, t, c, better in rows:
        ratio = c / t if better == "higher" else t / c
        print(f"{name:50} {t:12.1f} {c:12.1f} {ratio:7.2f}x")
    print(f"{'achieved GFLOP/s in training (cnn)':50} {'':>12} {cnn_fig['train_gflops']:12.1f} "
          f"{100 * cnn_fig['train_share_of_peak']:6.1f}% of peak")
    if time99:
        print(f"{'cnn: 8 epochs one-cycle lr 4e-3, cold start (s)':50} {'':>12} {time99['seconds']:12.1f} "
              f"  test accuracy {100 * time99['test_accuracy']:.2f} %")
    if args.json:
        json.dump({"rows": [{"figure": n, "pytorch": t, "cnn": c, "better": b} for n, t, c, b in rows],
                   "cnn_bench": cnn_fig, "time_to_99": time99, "threads": args.threads},
                  open(args.json, "w"), indent=2)


if __name__ == "__main__":
    main()
