#!/usr/bin/env bash
# Instructions executed by chain_bench and shuffle_bench of two builds, under callgrind: a
# count that does not move with the other core's load (timings on this 2-core machine spread
# +-15% for shuffle_bench), so a change of a few percent in the hot path shows.
#   bench/compare_instructions.sh BASE_BENCH_DIR NEW_BENCH_DIR [SHUFFLE_RECORDS]
# Prints each benchmark's total instructions (all processes) and the ratio NEW / BASE.
set -euo pipefail
base="$1" new="$2" records="${3:-500000}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
total() {  # dir-with-callgrind-files
  local t=0
  for f in "$1"/cg.*; do t=$((t + $(grep -E '^totals:' "$f" | awk '{print $2}'))); done
  echo "$t"
}
for bench in chain_bench shuffle_bench; do
  declare -A got=()
  for side in base new; do
    dir="$base"; [ "$side" = new ] && dir="$new"
    out="$work/$bench-$side"
    mkdir -p "$out"
    args=(--benchmark_filter=BM_WeirChain)
    [ "$bench" = shuffle_bench ] && args=("$records")
    (cd "$out" && valgrind --tool=callgrind --trace-children=yes \
       --callgrind-out-file="$out/cg.%p" "$dir/$bench" "${args[@]}" >/dev/null 2>&1)
    got[$side]=$(total "$out")
  done
  python3 -c "import sys; b,n=int(sys.argv[2]),int(sys.argv[3]); print(f'{sys.argv[1]:14} base {b:>15,} new {n:>15,} new/base {n/b:.4f}')" \
    "$bench" "${got[base]}" "${got[new]}"
done
