#!/usr/bin/env bash
# Installs dependencies (Debian packages only), builds Weir and runs its tests.
#   deploy/test.sh            the default tiers: unit + integration (a few minutes); installs
#                             tests/parquet's pinned npm package (DuckDB, the Parquet reader)
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
# Test-only npm packages, pinned by their package-lock.json; skipped when that exact tree is
# already installed, so reruns work offline. `npm install --no-save` installs the locked
# versions and never rewrites the lock. Not `npm ci`: npm 11 writes only this platform's
# optional binaries (DuckDB's) into a lock, then `npm ci` refuses that same lock as out of sync.
npm_install_locked() {
  local stamp="$1/node_modules/.weir-installed-lock"
  if ! cmp -s "$1/package-lock.json" "$stamp"; then
    npm install --prefix "$1" --no-save --no-audit --no-fund
    cp "$1/package-lock.json" "$stamp"
  fi
}
# DuckDB (@duckdb/node-api), the independent reader of the Parquet tests (default tier).
bash deploy/install-deps.sh --node
npm_install_locked tests/parquet
labels=(-LE slow)
if [ "${1:-}" = "--all" ]; then
  labels=()
  # Test-only: Debian's chromium, and puppeteer-core pinned by tests/browser/package-lock.json
  # (npm ci is skipped when that exact tree is already installed, so reruns work offline).
  bash deploy/install-deps.sh --browser
  npm_install_locked tests/browser
fi
cd "$BUILD"
ctest --output-on-failure -j "$JOBS" "${labels[@]}"
