#!/usr/bin/env bash
# Builds the library, the cnn command and the tests with AddressSanitizer and
# UndefinedBehaviorSanitizer (GCC, the `asan` preset in CMakePresets.json) into build-asan/ and
# runs the CTest suite there. Any sanitizer report fails the test that caused it (ASan aborts,
# UBSan halts: -fno-sanitize-recover=undefined), and so this script.
#
#   bash scripts/sanitize.sh [extra ctest arguments, e.g. -R FastKernels]
#
# Left out, see docs/RELIABILITY.md: install_consumer (builds and packages an install tree with
# the ordinary compiler; nothing sanitized runs) and format (clang-format, no code runs).
# data/mnist is needed by mnist_short_training (bash scripts/fetch-data.sh mnist).
set -euo pipefail
cd "$(dirname "$0")/.."

cmake --preset asan >/dev/null
cmake --build --preset asan

# detect_leaks: on (the default); nothing in the suite leaks, OpenMP's and OpenBLAS's thread
# pools included. strict_string_checks and detect_stack_use_after_return: stricter than the
# defaults, at little cost. The test preset sets the same; here they also reach a plain ctest.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
command -v llvm-symbolizer >/dev/null && export ASAN_SYMBOLIZER_PATH="$(command -v llvm-symbolizer)"

ctest --preset asan -j "$(nproc)" "$@"
