#!/usr/bin/env bash
# The CUDA backend's checks on a GPU machine, in one call (docs/CUDA.md).
#
#   bash scripts/gpu-check.sh prepare   here: builds with CUDA (build/), and packs into
#                                       .gpu/pack.tar.xz the cnn command, the test binary, the
#                                       shared libraries the GPU machine lacks (Debian's OpenBLAS,
#                                       protobuf, libpng, ...) and MNIST's .gz files
#   bash scripts/gpu-check.sh run       there, from the repository root with .gpu/ carried:
#                                       1. every op of the op table, forward and backward, on
#                                          CUDA against the CPU reference (CNN_POISON=1), the
#                                          relative error of each case, and the other CUDA tests;
#                                       2. the tutorial recipe (Adam, lr 1e-3, batch 64, seed 0)
#                                          trained on CUDA and on the CPU: test accuracies;
#                                       3. eval and predict of the CUDA-trained checkpoint on both
#                                          devices: the same answers;
#                                       4. cnn bench on both devices, and the epoch time of the
#                                          same recipe in PyTorch eager on the same GPU;
#                                       and prints the table. Outputs under $OUT (or .gpu/out);
#                                       the pack is unpacked into /tmp/cnn-gpu.
# With the device tool: prepare here, then run with carry [".gpu"] and the command
# `bash scripts/gpu-check.sh run` (.gpu/ is ignored by git, so it travels only when carried).
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
EPOCHS=${CNN_GPU_EPOCHS:-5}

prepare() {
  set -e
  command -v nvcc >/dev/null || { echo "gpu-check: nvcc not found; the CUDA backend needs it" >&2; exit 1; }
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCNN_CUDA=ON >/dev/null
  grep -q 'CNN_WITH_CUDA:INTERNAL=ON\|CMAKE_CUDA_COMPILER:' build/CMakeCache.txt
  cmake --build build --target cnn_cli cnn_tests
  bash scripts/fetch-data.sh mnist >/dev/null
  # Staged in .gpu-stage, carried as one xz archive (the device tool carries 64 MiB at most;
  # Debian's OpenBLAS alone is 36 MB, 4 MB packed).
  local stage=.gpu-stage
  rm -rf .gpu "$stage" && mkdir -p .gpu "$stage/bin" "$stage/lib" "$stage/data/mnist"
  cp build/cnn build/tests/cnn_tests "$stage/bin/"
  strip "$stage"/bin/* || true
  # Every shared library but glibc's, the C++ runtime's (the GPU machine's are newer, and
  # PyTorch there needs them) and the CUDA toolkit's (cuBLAS is loaded from the machine's own).
  for bin in "$stage"/bin/*; do
    ldd "$bin" | awk '/=> \//{print $3}'
  done | sort -u |
    grep -vE '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*|libstdc\+\+|libgcc_s)\.so|libcu(blas|blasLt|dart)|libnvidia' |
    while read -r lib; do cp -L "$lib" "$stage/lib/"; done
  for f in data/mnist/*; do
    case $f in
      *.gz) cp "$f" "$stage/data/mnist/" ;;
      *) gzip -c "$f" >"$stage/data/mnist/$(basename "$f").gz" ;;
    esac
  done
  cp tools/torch_gpu_epoch.py "$stage/"
  tar -C "$stage" -cf - . | xz -T0 -6 >.gpu/pack.tar.xz
  rm -rf "$stage"
  for ignored in /.gpu/ /.gpu-stage/; do
    grep -qxF "$ignored" .git/info/exclude 2>/dev/null || echo "$ignored" >>.git/info/exclude
  done
  du -sh .gpu
  echo "gpu-check: packed .gpu/; run 'bash scripts/gpu-check.sh run' on the GPU machine with .gpu carried"
}

# The directories that hold libcublas.so.13 there: the CUDA toolkit's, or PyTorch's wheels'.
cuda_lib_dirs() {
  local dirs=()
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [[ -e $d/libcublas.so.13 ]] && dirs+=("$d")
  done
  local site
  site=$(python3 -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]))' 2>/dev/null || true)
  if [[ -n $site ]]; then
    while read -r f; do dirs+=("$(dirname "$f")"); done < <(find "$site/nvidia" -name 'libcublas.so.13*' 2>/dev/null | head -1)
  fi
  (IFS=:; echo "${dirs[*]}")
}

run() {
  [[ -f .gpu/pack.tar.xz ]] || { echo "gpu-check: no .gpu/pack.tar.xz: run 'prepare' here and carry .gpu" >&2; exit 1; }
  local out=${OUT:-.gpu/out} root=/tmp/cnn-gpu
  mkdir -p "$out" && rm -rf "$root" && mkdir -p "$root"
  xz -dc .gpu/pack.tar.xz | tar -C "$root" -xf -
  # The carried libraries for cnn's binaries only: python3 (PyTorch) keeps the machine's own.
  local libs="$root/lib:$(cuda_lib_dirs)"
  cnn() { LD_LIBRARY_PATH="$libs" "$root/bin/cnn" "$@"; }
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
  local data=$root/data/mnist
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee "$out/gpu.txt"
  LD_LIBRARY_PATH="$libs" ldd "$root/bin/cnn" | grep 'not found' || true
  echo "cuBLAS from: $(cuda_lib_dirs)"

  echo "== 1. CUDA tests (op table against the CPU reference, poisoned outputs)"
  CNN_POISON=1 LD_LIBRARY_PATH="$libs" "$root/bin/cnn_tests" --gtest_filter='*Cuda*' 2>&1 | tee "$out/cuda_tests.log" |
    grep -E '^cuda-vs-cpu|FAILED|PASSED|SKIPPED|Failure|relative error' | tail -200
  local tests_rc=${PIPESTATUS[0]}

  echo "== 2. training, the tutorial recipe, $EPOCHS epochs, on cuda and on cpu"
  for dev in cuda cpu; do
    cnn train --device "$dev" --data-dir "$data" --epochs "$EPOCHS" --batch-size 64 --lr 1e-3 \
      --optimizer adam --seed 0 --out "$out/$dev.cnnt" --json "$out/train-$dev.json" --overwrite \
      --quiet 2>&1 | tail -n 8
  done

  echo "== 3. eval and predict of the CUDA-trained checkpoint on both devices"
  for dev in cuda cpu; do
    cnn eval --device "$dev" --weights "$out/cuda.cnnt" --data-dir "$data" --json "$out/eval-$dev.json" >/dev/null 2>&1 ||
      echo "eval --device $dev failed"
    for i in 0 1 2 3 4; do
      cnn predict --device "$dev" --weights "$out/cuda.cnnt" --data-dir "$data" --index $i 2>&1
    done >"$out/predict-$dev.txt"
  done
  if cmp -s <(grep Pred "$out/predict-cuda.txt") <(grep Pred "$out/predict-cpu.txt"); then
    echo "predict: the same classes on cuda and cpu (5 images)"
  else
    echo "predict: DIFFERENT classes"; diff "$out/predict-cuda.txt" "$out/predict-cpu.txt"
  fi

  echo "== 4. speed: cnn bench on both devices; PyTorch eager on this GPU"
  cnn bench --device cuda --seconds 2 --json "$out/bench-cuda.json" 2>&1
  cnn bench --device cpu --seconds 2 --json "$out/bench-cpu.json" 2>&1
  python3 "$root/torch_gpu_epoch.py" --batch 64 --epochs 3 >"$out/torch.json" 2>"$out/torch.err" ||
    tail -5 "$out/torch.err"

  echo
  echo "== table"
  python3 - "$out" <<'EOF'
import json, os, re, sys
out = sys.argv[1]
def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except Exception as e:
        return {"error": str(e)}
errs = {}
for line in open(os.path.join(out, "cuda_tests.log"), errors="replace"):
    m = re.match(r"cuda-vs-cpu (\S+)\s+(\S+)\s+max relative error (\S+)", line)
    if m:
        errs.setdefault(m.group(1), []).append(float(m.group(3)))
print("| op | cases | max relative error (CUDA vs CPU reference) |")
print("| --- | --- | --- |")
for op in sorted(errs):
    print(f"| {op} | {len(errs[op])} | {max(errs[op]):.2e} |")
tc, tp = load("train-cuda.json"), load("train-cpu.json")
ec, ep = load("eval-cuda.json"), load("eval-cpu.json")
print()
print("| figure | cuda | cpu |")
print("| --- | --- | --- |")
print(f"| final test accuracy (train --json) | {tc.get('final_test_accuracy')} | {tp.get('final_test_accuracy')} |")
def epoch_secs(j):
    h = j.get("epochs") or []
    return min((r.get("seconds", 0) for r in h), default=None)
print(f"| fastest epoch, s (batch 64, Adam) | {epoch_secs(tc)} | {epoch_secs(tp)} |")
print(f"| eval accuracy of the CUDA-trained checkpoint | {ec.get('accuracy')} | {ep.get('accuracy')} |")
bc, bp = load("bench-cuda.json"), load("bench-cpu.json")
for k in ("train_images_per_second", "infer_images_per_second", "latency_us_median"):
    print(f"| bench {k} | {bc.get(k)} | {bp.get(k)} |")
t = load("torch.json")
cnn_epoch = epoch_secs(tc)
print()
print(f"PyTorch eager ({t.get('torch')}, {t.get('gpu')}): epoch {t.get('epoch_seconds')} s at batch 64; "
      f"cnn on CUDA: {cnn_epoch} s"
      + (f" ({t['epoch_seconds'] / cnn_epoch:.2f}x PyTorch's speed)" if cnn_epoch and t.get('epoch_seconds') else ""))
EOF
  echo "gpu-check: CUDA tests exit $tests_rc; logs in $out"
  return "$tests_rc"
}

case $mode in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: bash scripts/gpu-check.sh prepare|run (docs/CUDA.md)" >&2; exit 2 ;;
esac
