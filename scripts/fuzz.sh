#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/, clang 14, ASan + UBSan) into build-fuzz/ and runs each
# for SECONDS (default 60) over its committed seed corpus fuzz/corpus/<name>/. New inputs go to a
# scratch corpus, build-fuzz/corpus/<name>/; with --update-corpus, the ones that add coverage are
# merged into fuzz/corpus/<name>/ afterwards (libFuzzer's -merge=1), to be committed.
#
#   bash scripts/fuzz.sh [SECONDS] [--update-corpus] [--keep-going] [--no-build] [NAME...]
#
# --keep-going: libFuzzer's fork mode, going on after a crash, a timeout or an out-of-memory to
# collect every distinct one (for a long search; the script still fails when there was one).
# NAME: idx, archive, image, explorer, model, onnx, keras (default: all). Prints each harness's
# executions and coverage (libFuzzer's final `cov:` figure: instrumented edges reached). A crash, a sanitizer
# report, a leak, a timeout (10 s) or memory over 2 GiB fails the script; the input is saved in
# build-fuzz/artifacts/<name>/ and the report is in build-fuzz/logs/<name>.log. To replay one:
#   build-fuzz/fuzz/fuzz_<name> build-fuzz/artifacts/<name>/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60 update=0 build=1 names=() extra=()
for arg in "$@"; do
  case "$arg" in
    --update-corpus) update=1 ;;
    --no-build) build=0 ;;
    --keep-going) extra=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1) ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    [0-9]*) seconds=$arg ;;
    idx | archive | image | explorer | model | onnx | keras) names+=("$arg") ;;
    *) echo "fuzz.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
((${#names[@]})) || names=(idx archive image explorer model onnx keras)

# The largest input each harness tries: IDX and image headers are small; an archive needs room
# for the seed checkpoint (the tutorial model with one class, 210 KB); a request for up to a
# 120x120 drawing; an ONNX file for a small model's graph and weights; a Keras model's JSON.
declare -A max_len=([idx]=4096 [archive]=262144 [image]=16384 [explorer]=65536 [model]=16384
                  [onnx]=65536 [keras]=16384)

if ((build)); then
  if ! command -v clang++-14 >/dev/null; then
    echo "fuzz.sh: clang++-14 not found (bash scripts/setup.sh installs it)" >&2
    exit 1
  fi
  CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCNN_BUILD_FUZZERS=ON -DCNN_SANITIZE=ON -DCNN_BUILD_CLI=OFF -DCNN_BUILD_TESTS=OFF \
    -DCNN_BUILD_BENCHMARKS=OFF -DCNN_INSTALL=OFF >/dev/null
  cmake --build build-fuzz --target $(printf 'fuzz_%s ' "${names[@]}")
fi

# One thread each: the model's OpenMP loops and OpenBLAS would otherwise start pools per process
# and make every execution slower without reaching more code.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
command -v llvm-symbolizer-14 >/dev/null && export ASAN_SYMBOLIZER_PATH="$(command -v llvm-symbolizer-14)"
# The harnesses write each input to a file (fuzz/fuzz_common.h); a crashed or killed run leaves
# its last one behind, so they all go in a directory of this run's, removed at the end.
CNN_FUZZ_TMPDIR=$(mktemp -d "$([[ -w /dev/shm ]] && echo /dev/shm || echo /tmp)/cnn-fuzz.XXXXXX")
export CNN_FUZZ_TMPDIR
trap 'rm -rf "$CNN_FUZZ_TMPDIR"' EXIT

failed=()
summary=()
for name in "${names[@]}"; do
  bin=build-fuzz/fuzz/fuzz_$name seeds=fuzz/corpus/$name
  scratch=build-fuzz/corpus/$name artifacts=build-fuzz/artifacts/$name log=build-fuzz/logs/$name.log
  mkdir -p "$scratch" "$artifacts" "$(dirname "$log")"
  echo "fuzz.sh: $name for ${seconds}s (max_len ${max_len[$name]}), log in $log"
  rc=0
  touch "$log.start"
  # The scratch corpus first: libFuzzer writes new inputs into the first directory only.
  "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len="${max_len[$name]}" \
    -print_final_stats=1 -artifact_prefix="$artifacts/" ${extra[@]+"${extra[@]}"} "$scratch" "$seeds" \
    >"$log" 2>&1 || rc=$?
  runs=$(grep -oE 'stat::number_of_executed_units:[[:space:]]*[0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+$' || true)
  # Fork mode prints no final stats: its last status line "#RUNS: cov: ..." says as much.
  [[ -n $runs ]] || runs=$(grep -oE '^#[0-9]+: cov' "$log" | tail -n 1 | tr -dc '0-9' || true)
  # Fork mode exits 0 after ignored crashes: the inputs it saved say there were some.
  if ((rc == 0)) && [[ -n $(find "$artifacts" -type f -newer "$log.start") ]]; then rc=1; fi
  speed=$(grep -oE 'stat::average_exec_per_sec:[[:space:]]*[0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+$' || true)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || true)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || true)
  corpus=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -n 1 | cut -d' ' -f2 || true)
  summary+=("$(printf '%-9s %10s execs %6s/s  cov %5s  ft %6s  corpus %s  exit %s' "$name" \
    "${runs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" "${corpus:-?}" "$rc")")
  if ((rc != 0)); then
    failed+=("$name")
    echo "fuzz.sh: $name FAILED (exit $rc); the report:" >&2
    # From the first report (sanitizer, uncaught exception, timeout, memory) to the saved input.
    sed -n '/ERROR: \|runtime error:\|uncaught exception\|out-of-memory\|ALARM: working on the last Unit/,/Test unit written to/p' \
      "$log" | head -n 60 >&2
    ls -l "$artifacts" >&2
  elif ((update)); then
    "$bin" -merge=1 -max_len="${max_len[$name]}" "$seeds" "$scratch" >>"$log" 2>&1
    echo "fuzz.sh: merged into $seeds ($(ls "$seeds" | wc -l) files)"
  fi
done

echo
echo "fuzz.sh: ${seconds}s per harness"
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz.sh: FAILED: ${failed[*]} (inputs in build-fuzz/artifacts/, reports in build-fuzz/logs/)" >&2
  exit 1
fi
echo "fuzz.sh: no crashes"
