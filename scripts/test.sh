#!/usr/bin/env bash
# Sets everything up on a fresh machine, builds, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
bash scripts/fetch-data.sh mnist   # the short real training run needs it
npm ci --prefix tests/e2e --no-audit --no-fund --silent   # playwright-core for the browser tests
ctest --test-dir build --output-on-failure -j "$(nproc)"
