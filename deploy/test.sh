#!/usr/bin/env bash
# Installs dependencies (Debian packages only), builds Weir and runs its tests.
#   deploy/test.sh            the default tiers: unit + integration (a few minutes)
#   deploy/test.sh --all      also the tests labelled slow
# Environment: WEIR_BUILD_DIR (default ./build), WEIR_JOBS (parallel jobs, default nproc).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/install-deps.sh
BUILD="${WEIR_BUILD_DIR:-build}"
JOBS="${WEIR_JOBS:-$(nproc)}"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD" -j "$JOBS"
labels=(-LE slow)
if [ "${1:-}" = "--all" ]; then labels=(); fi
cd "$BUILD"
ctest --output-on-failure -j "$JOBS" "${labels[@]}"
