#!/usr/bin/env bash
# Regenerates tests/fixtures/ from PyTorch (Debian's python3-torch, 1.13). Not needed to build or
# test: the fixtures are committed.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! /usr/bin/python3 -c "import torch, numpy" 2>/dev/null; then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-torch python3-numpy
fi
/usr/bin/python3 tools/gen_fixtures.py
