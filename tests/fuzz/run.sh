#!/usr/bin/env bash
# Builds the fuzz targets with clang (libFuzzer + ASan + UBSan) in build-fuzz/ and runs each for
# SECONDS (default 60). Findings are written to build-fuzz/findings/.
#   tests/fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
secs="${1:-60}"
command -v clang++ >/dev/null || { echo "clang++ is needed (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DWEIR_BUILD_FUZZ=ON -DWEIR_BUILD_TESTS=OFF -DWEIR_BUILD_BENCH=OFF \
  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer" >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target expr_fuzz job_file_fuzz parse_fuzz
mkdir -p build-fuzz/findings build-fuzz/corpus/expr build-fuzz/corpus/job_file build-fuzz/corpus/parse
cp tests/fuzz/corpus/job_file/* build-fuzz/corpus/job_file/
for f in expr_fuzz job_file_fuzz parse_fuzz; do
  corpus=build-fuzz/corpus/${f%_fuzz}
  echo "== $f for ${secs}s"
  build-fuzz/tests/fuzz/$f -max_total_time="$secs" -artifact_prefix=build-fuzz/findings/ "$corpus"
done
