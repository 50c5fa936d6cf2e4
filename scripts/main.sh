#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: set up, build, fetch MNIST, then the tutorial's
# experiment: the model's summary, 5 epochs of Adam (lr 1e-3, batch 64), the test accuracy, one
# prediction and the notebook's figures.
# Extra arguments go to 'cnn train' (e.g. --epochs 1 for a quick look).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh >/dev/null
bash scripts/fetch-data.sh mnist

cnn=build/cnn
ckpt=checkpoints/mnist-tutorial.cnnt
echo
echo "== the tutorial's model =="
$cnn summary
echo
echo "== training (Adam, lr 1e-3, batch 64, 5 epochs) =="
# --overwrite: the main job refreshes its own checkpoint (without it, an existing one is refused).
$cnn train --dataset mnist --epochs 5 --batch-size 64 --lr 1e-3 --optimizer adam --seed 0 \
  --out "$ckpt" --json checkpoints/mnist-tutorial.json --overwrite "$@"
echo
echo "== one prediction: the first test image =="
$cnn predict --weights "$ckpt" --index 0
echo
echo "== figures =="
$cnn visualize --weights "$ckpt" --index 0 --out figures
echo
echo "checkpoint: $ckpt   summary: checkpoints/mnist-tutorial.json   curves: ${ckpt%.cnnt}-curves.png   pictures: figures/"
