#!/usr/bin/env bash
# Builds the fuzz targets with clang (libFuzzer + ASan + UBSan) in build-fuzz/ and runs them.
#   tests/fuzz/run.sh [all|TARGET...] [BUDGET]
#     all (default)  every target listed in tests/fuzz/CMakeLists.txt
#     BUDGET         seconds per target (e.g. 60, the default), or executions with a suffix:
#                    10M, 500k, 20000x (libFuzzer -runs)
# The corpus of each target is kept in tests/fuzz/corpus/<name>/ (name without _fuzz): a run
# starts from it (plus seeds the target writes itself, WEIR_FUZZ_SEEDS) and merges what it
# found back into it, minimised. Crashes go to build-fuzz/findings/<name>/; the run fails then.
# Regression inputs (crashes found and fixed) live in tests/fuzz/corpus/<name>/ as well, so
# every later run replays them first. Environment: WEIR_FUZZ_JOBS (build jobs, default 2).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
command -v clang++ >/dev/null || { echo "clang++ is needed (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }

targets=()
budget=60
for a in "$@"; do
  if [[ "$a" =~ ^[0-9]+([kKmM]|x)?$ ]]; then budget="$a"; else targets+=("$a"); fi
done
[ ${#targets[@]} -eq 0 ] && targets=(all)

CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DWEIR_BUILD_FUZZ=ON -DWEIR_BUILD_TESTS=OFF -DWEIR_BUILD_BENCH=OFF \
  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer" >/dev/null
if [ "${targets[*]}" = all ]; then
  # (the list has no trailing newline: read's EOF status is not a failure here)
  read -r -a targets < <(tr ';' ' ' < build-fuzz/fuzz_targets.txt) || true
fi
# "serde" and "serde_fuzz" both name the target.
for i in "${!targets[@]}"; do targets[$i]=${targets[$i]%_fuzz}_fuzz; done
nice cmake --build build-fuzz -j "${WEIR_FUZZ_JOBS:-2}" --target "${targets[@]}"

case "$budget" in
  *[kK]) limit=(-runs=$(( ${budget%?} * 1000 ))) ;;
  *[mM]) limit=(-runs=$(( ${budget%?} * 1000000 ))) ;;
  *x)    limit=(-runs="${budget%x}") ;;
  *)     limit=(-max_total_time="$budget") ;;
esac

failed=()
for f in "${targets[@]}"; do
  name=${f%_fuzz}
  kept=tests/fuzz/corpus/$name
  work=build-fuzz/corpus/$name
  findings=build-fuzz/findings/$name
  mkdir -p "$kept" "$work" "$findings"
  WEIR_FUZZ_SEEDS="$work" build-fuzz/tests/fuzz/$f >/dev/null 2>&1 || true
  echo "== $f (${limit[*]})"
  # -timeout: an input that runs 120 s is a wedge, reported as a finding (generous: on a starved
  # 2-core machine ASan's own memory release once took 39 s of an input that replays in 0.1 s).
  extra=()
  # frame_fuzz's server keeps state across inputs (released attempts, bounded), so libFuzzer's
  # per-input leak check would scan the heap at most inputs (5x slower); leaks are still
  # checked when the process exits.
  [ "$f" = frame_fuzz ] && extra=(-detect_leaks=0)
  if ! nice build-fuzz/tests/fuzz/$f "${limit[@]}" "${extra[@]}" -timeout=120 -artifact_prefix="$findings/" \
         -print_final_stats=1 "$work" "$kept" 2>&1 | tee "build-fuzz/$name.log" |
       grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)'; then
    :
  fi
  # (A "slow-unit" artifact is not a finding: libFuzzer writes one for any input over 10 s,
  # which a starved machine produces; the -timeout above reports real wedges.)
  if grep -qE '==[0-9]+==ERROR|^SUMMARY: |deadly signal' "build-fuzz/$name.log" ||
     grep 'Test unit written' "build-fuzz/$name.log" | grep -qv 'slow-unit-'; then
    failed+=("$f")
    continue
  fi
  # Keep the corpus: merge the run's new inputs into the kept one (minimised).
  nice build-fuzz/tests/fuzz/$f -merge=1 "$kept" "$work" >/dev/null 2>&1 || true
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz findings in: ${failed[*]} (see build-fuzz/findings/ and build-fuzz/<name>.log)" >&2
  exit 1
fi
echo "all clean: ${targets[*]}"
