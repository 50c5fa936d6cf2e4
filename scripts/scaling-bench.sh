#!/usr/bin/env bash
# The scaling figure of docs/SCALING.md: images/s of `cnn train` on MNIST for one process and for
# 2 ranks under mpirun, on this machine, in alternating rounds (so that a busy moment hits every
# configuration alike). Each run trains STEPS steps of the tutorial's recipe (batch 64); its
# images/s is the trainer's own (training steps only, without loading and evaluation).
#   bash scripts/scaling-bench.sh [ROUNDS=3] [STEPS=600] [MODEL=tutorial]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} steps=${2:-600} model=${3:-tutorial}
cnn=build/cnn data=data/mnist
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cores=$(nproc)
configs=("1 rank, 1 thread" "1 rank, $cores threads" "2 ranks, 1 thread each")
run() {  # run CONFIG_INDEX ROUND
  local args=(train --model "$model" --data-dir "$data" --epochs 1 --max-steps "$steps" --quiet
    --overwrite --out "$out/m.cnnt" --json "$out/$1-$2.json")
  case $1 in
    0) "$cnn" "${args[@]}" --threads 1 >/dev/null ;;
    1) "$cnn" "${args[@]}" --threads "$cores" >/dev/null ;;
    2) mpirun --oversubscribe -np 2 "$cnn" "${args[@]}" >/dev/null ;;
  esac
}
for r in $(seq "$rounds"); do
  for c in 0 1 2; do run "$c" "$r"; done
done
python3 - "$out" "$rounds" "$model" "$steps" "${configs[@]}" <<'PY'
import json, statistics, sys
out, rounds, model, steps = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
names = sys.argv[5:]
rates = [[json.load(open(f"{out}/{c}-{r}.json"))["images_per_second"]
          for r in range(1, rounds + 1)] for c in range(len(names))]
base = statistics.median(rates[0])
print(f"{model}, {steps} steps of batch 64 per run, {rounds} alternating rounds; median images/s:")
print("| configuration | images/s (median) | runs | against 1 rank, 1 thread |")
print("|---|--:|---|--:|")
for name, r in zip(names, rates):
    m = statistics.median(r)
    print(f"| {name} | {m:,.0f} | {', '.join(f'{x:,.0f}' for x in r)} | {m / base:.2f}x |")
PY
