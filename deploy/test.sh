#!/usr/bin/env bash
# Installs dependencies (Debian packages only), builds Weir and runs its tests.
#   deploy/test.sh            the default tiers: unit + integration (a few minutes)
#   deploy/test.sh --all      also the tests labelled slow, including the real-browser test
#                             (installs chromium and tests/browser's pinned npm packages)
# Environment: WEIR_BUILD_DIR (default ./build), WEIR_JOBS (parallel jobs, default nproc).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/install-deps.sh
BUILD="${WEIR_BUILD_DIR:-build}"
JOBS="${WEIR_JOBS:-$(nproc)}"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD" -j "$JOBS"
labels=(-LE slow)
if [ "${1:-}" = "--all" ]; then
  labels=()
  # Test-only: Debian's chromium, and puppeteer-core pinned by tests/browser/package-lock.json
  # (npm ci is skipped when that exact tree is already installed, so reruns work offline).
  bash deploy/install-deps.sh --browser
  stamp=tests/browser/node_modules/.weir-installed-lock
  if ! cmp -s tests/browser/package-lock.json "$stamp"; then
    npm ci --prefix tests/browser --no-audit --no-fund
    cp tests/browser/package-lock.json "$stamp"
  fi
fi
cd "$BUILD"
ctest --output-on-failure -j "$JOBS" "${labels[@]}"
