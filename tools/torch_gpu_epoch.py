"""PyTorch eager on the same GPU, for scripts/gpu-check.sh: the tutorial's model (conv 1->16 3x3,
ReLU, maxpool 2/2 pad 1, conv 16->32, ReLU, maxpool, flatten, linear 1568->32, ReLU, dropout 0.3,
linear 32->10), Adam lr 1e-3, cross-entropy, batch 64, one epoch of 60000 MNIST-sized images.
The data sits on the GPU before the clock starts (the images are random: the time of an epoch
does not depend on them). float32, TF32 off. Prints one JSON line.

Usage: python3 tools/torch_gpu_epoch.py [--batch 64] [--epochs 2]"""
import argparse
import json
import time

import torch
from torch import nn


def model():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2, 2, padding=1),
        nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2, 2, padding=1),
        nn.Flatten(), nn.Linear(1568, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 10))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--epochs", type=int, default=2)
    a = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    torch.manual_seed(0)
    x = torch.rand(60000, 1, 28, 28, device=dev)
    y = torch.randint(0, 10, (60000,), device=dev)
    net = model().to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    times = []
    for _ in range(a.epochs):  # the first epoch warms up (cuDNN's choice, allocations)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        perm = torch.randperm(60000, device=dev)
        for i in range(0, 60000, a.batch):
            idx = perm[i:i + a.batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"system": "pytorch-eager", "torch": torch.__version__,
                      "gpu": torch.cuda.get_device_name(0), "batch": a.batch,
                      "epoch_seconds": min(times[1:] or times)}))


if __name__ == "__main__":
    main()
