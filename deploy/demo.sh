#!/usr/bin/env bash
# Installs dependencies (Debian packages only), builds Weir, starts a local cluster (one job
# manager, two task managers), runs the example job and shows its output. The cluster keeps
# running afterwards so you can explore it; deploy/stop-cluster.sh stops it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"
source deploy/common.sh
if is_alive "$WEIR_RUN_DIR/jobmanager.pid"; then
  echo "A cluster is already running; restarting it."
  deploy/stop-cluster.sh
fi
deploy/start-cluster.sh 2
OUT=/tmp/weir-output/count-by-key
rm -rf "$OUT"
echo
echo "Submitting examples/count-by-key.yaml (1,000,000 ids counted per key, across both task managers):"
job=$(build/cli/weir run examples/count-by-key.yaml --wait --timeout 120)
build/cli/weir status "$job"
echo
echo "Output ($OUT):"
ls -l "$OUT"
echo "first rows:"
head -n 3 "$OUT"/part-out-0.jsonl
echo "keys: $(cat "$OUT"/*.jsonl | wc -l) (expected 1000, each with cnt 1000)"
cat <<EOM

The cluster is still running (logs in run/log/). Try:
  build/cli/weir taskmanagers
  build/cli/weir run examples/unbounded.yaml        # an endless job, checkpointed every second
  build/cli/weir list
  deploy/taskmanager.sh kill tm-2                    # kill -9 a task manager: the job restarts
  build/cli/weir status JOB_ID                      #   from its latest checkpoint (restarts: 1)
  deploy/taskmanager.sh start tm-2                   # bring it back
  build/cli/weir stop JOB_ID --savepoint            # stop with a savepoint; prints its path
  build/cli/weir cancel JOB_ID                       # or just cancel
  tests/chaos/chaos_test.py                          # kill -9 TMs and the JM under an exactly-once job
  deploy/stop-cluster.sh
EOM
