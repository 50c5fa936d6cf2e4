#!/usr/bin/env bash
# Measures cnn against ONNX Runtime (npm onnxruntime-node, CPU) and libtorch (Debian's
# libtorch-dev, C++) side by side on this machine, for the tutorial's model and every model in
# models/; the figures go into docs/BENCHMARKS.md. Not part of CI.
# Usage: scripts/compare-peers.sh [--models tutorial,vgg-bn] [--rounds 5] [--seconds 2]
#        [--threads 2] [--json FILE]   (tools/compare_peers.py --help says more)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh >/dev/null
# PyTorch builds each model from its file and writes it for the peers; libtorch runs it.
need=()
/usr/bin/python3 -c "import torch, numpy" 2>/dev/null || need+=(python3-torch python3-numpy)
[[ -f /usr/include/torch/script.h ]] || need+=(libtorch-dev)
if ((${#need[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
npm ci --prefix tests/peers --ignore-scripts --no-audit --no-fund --silent
mkdir -p build/peers
if [[ ! build/peers/libtorch_bench -nt bench/peers/libtorch_bench.cpp ]]; then
  echo "compare-peers: building build/peers/libtorch_bench" >&2
  g++ -O2 -std=c++17 -I/usr/include/torch/csrc/api/include bench/peers/libtorch_bench.cpp \
    -o build/peers/libtorch_bench -ltorch -ltorch_cpu -lc10
fi
/usr/bin/python3 tools/compare_peers.py "$@"
