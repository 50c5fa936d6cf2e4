#!/usr/bin/env bash
# `cnn predict` over many pictures in one call (batched) against one call per picture, the figure
# in docs/BENCHMARKS.md. Not part of CI. Writes the first N MNIST test digits as PNG files
# (dark on light, as a scan would be), trains a small checkpoint if none is given, then times
# both ways in alternating rounds. Usage: scripts/bench-predict.sh [N=1000] [ROUNDS=3] [CKPT]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
rounds=${2:-3}
ckpt=${3:-}
bash scripts/setup.sh >/dev/null
bash scripts/build.sh >/dev/null
bash scripts/fetch-data.sh mnist >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/digits"
python3 - "$n" "$work/digits" <<'PY'
import struct, sys, zlib
n, out = int(sys.argv[1]), sys.argv[2]
images = open("data/mnist/t10k-images-idx3-ubyte", "rb").read()[16:]
labels = open("data/mnist/t10k-labels-idx1-ubyte", "rb").read()[8:]
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
for i in range(n):
    px = images[i * 784:(i + 1) * 784]
    raw = b"".join(b"\0" + bytes(255 - p for p in px[y * 28:(y + 1) * 28]) for y in range(28))
    with open(f"{out}/{i:05d}_label{labels[i]}.png", "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
PY
if [[ -z "$ckpt" ]]; then
  ckpt="$work/model.cnnt"
  build/cnn train --epochs 1 --quiet --out "$ckpt" >/dev/null
fi
singles=$(( n < 100 ? n : 100 ))
for r in $(seq "$rounds"); do
  t0=$(date +%s.%N)
  build/cnn predict --weights "$ckpt" --image "$work/digits" --json "$work/p.json" >/dev/null
  t1=$(date +%s.%N)
  for f in $(ls "$work"/digits/*.png | head -"$singles"); do
    build/cnn predict --weights "$ckpt" --image "$f" >/dev/null
  done
  t2=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" -v c="$t2" -v n="$n" -v s="$singles" -v r="$r" 'BEGIN {
    batched = (b - a) / n * 1000; single = (c - b) / s * 1000;
    printf "round %d: batched %.3f ms/picture (%d in one call), one call each %.2f ms/picture (%d calls): %.0fx\n",
           r, batched, n, single, s, single / batched }'
done
