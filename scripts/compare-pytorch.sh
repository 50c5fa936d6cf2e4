#!/usr/bin/env bash
# Measures cnn against PyTorch (Debian's python3-torch) side by side on this machine; the figures
# go into docs/BENCHMARKS.md. Not part of CI. Usage: scripts/compare-pytorch.sh [--threads 2] ...
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh >/dev/null
bash scripts/fetch-data.sh mnist >/dev/null
if ! /usr/bin/python3 -c "import torch, numpy" 2>/dev/null; then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-torch python3-numpy
fi
/usr/bin/python3 tools/compare_pytorch.py "$@"
