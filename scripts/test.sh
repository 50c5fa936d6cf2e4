#!/usr/bin/env bash
# Sets everything up on a fresh machine, builds, and runs the whole test suite: the CTest suite,
# the same suite built with ASan + UBSan (scripts/sanitize.sh), and each libFuzzer harness for
# CNN_FUZZ_SECONDS (default 45) over its committed corpus (scripts/fuzz.sh). Every stage runs
# even when one before it failed; the script fails when any did, and ends with each stage's
# closing lines. Logs: build/test-logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
bash scripts/fetch-data.sh mnist   # the short real training run needs it
npm ci --prefix tests/e2e --no-audit --no-fund --silent   # playwright-core for the browser tests
# The peers the ONNX and Keras tests compare with: ONNX Runtime (its install script would fetch
# optional GPU binaries from outside; the CPU binary is in the package) and TensorFlow.js.
npm ci --prefix tests/peers --ignore-scripts --no-audit --no-fund --silent

logs=build/test-logs
mkdir -p "$logs"
failed=() closing=()

# stage NAME COMMAND...: runs it with its output shown and kept in $logs/NAME.log.
stage() {
  local name=$1 start=$SECONDS rc=0
  shift
  echo "=== $name: $*"
  "$@" 2>&1 | tee "$logs/$name.log" || rc=$?
  closing+=("=== $name: exit $rc, $((SECONDS - start)) s")
  ((rc == 0)) || failed+=("$name")
}

# ctest's closing lines, and a check that tests ran at all (--no-tests=error also refuses none).
ctest_closing() {
  local log=$logs/$1.log
  local tail
  tail=$(grep -E '^[0-9]+% tests passed|^Total Test time|^The following tests FAILED|^[[:space:]]+[0-9]+ - .*\((Failed|Timeout|SEGFAULT|Subprocess aborted|Exception|Not Run)' "$log" || true)
  closing+=("${tail:-(no CTest summary: the run did not finish)}")
  if ! grep -qE 'tests failed out of [1-9]' "$log"; then
    closing+=("$1: no tests ran")
    failed+=("$1 (no tests)")
  fi
}

stage ctest ctest --test-dir build --output-on-failure --no-tests=error -j "$(nproc)"
ctest_closing ctest
# The browser test drives the sanitized server too (it is the only test of the page's requests
# end to end); install_consumer and format run no sanitized code (docs/RELIABILITY.md).
stage sanitize bash scripts/sanitize.sh
ctest_closing sanitize
stage fuzz bash scripts/fuzz.sh "${CNN_FUZZ_SECONDS:-45}"
closing+=("$(grep -E '^(idx|archive|image|explorer|model|onnx|keras) .* execs|^fuzz.sh: (no crashes|FAILED)' "$logs/fuzz.log" || echo '(no fuzzing summary)')")

echo
echo "=== summary"
printf '%s\n' "${closing[@]}"
if ((${#failed[@]})); then
  echo "test.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "test.sh: every stage passed"
