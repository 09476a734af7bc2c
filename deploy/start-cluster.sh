#!/usr/bin/env bash
# Starts a local cluster: one job manager and N task managers, logs and pid files under
# $WEIR_RUN_DIR (default ./run). Waits until every task manager has registered.
#   deploy/start-cluster.sh [N] [--keep-alive]
# N defaults to 2. --keep-alive (or WEIR_KEEP_ALIVE=1) restarts a task manager that dies.
# The job manager records jobs in $WEIR_RUN_DIR/ha, so a restarted one resumes them.
# See deploy/common.sh for the environment.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
n=2
for a in "$@"; do
  case "$a" in
    --keep-alive) export WEIR_KEEP_ALIVE=1 ;;
    [0-9]*) n="$a" ;;
    *) die "usage: $0 [N] [--keep-alive]" ;;
  esac
done
check_binaries
mkdir -p "$WEIR_RUN_DIR/log"
if is_alive "$WEIR_RUN_DIR/jobmanager.pid"; then
  die "a job manager is already running (pid $(cat "$WEIR_RUN_DIR/jobmanager.pid")); deploy/stop-cluster.sh first"
fi
nohup "$JM_BIN" --config "$WEIR_CONFIG" --rpc-address "$WEIR_JM" --rest-address "$WEIR_REST" \
  --ha-dir "$WEIR_RUN_DIR/ha" >>"$WEIR_RUN_DIR/log/jobmanager.log" 2>&1 </dev/null &
echo $! >"$WEIR_RUN_DIR/jobmanager.pid"
echo "started job manager on $WEIR_JM (pid $!), log $WEIR_RUN_DIR/log/jobmanager.log"
for _ in $(seq 100); do
  "$CLI_BIN" -m "$WEIR_JM" taskmanagers >/dev/null 2>&1 && break
  is_alive "$WEIR_RUN_DIR/jobmanager.pid" || die "job manager exited; see $WEIR_RUN_DIR/log/jobmanager.log"
  sleep 0.1
done
for i in $(seq "$n"); do
  "$DEPLOY_DIR/taskmanager.sh" start "tm-$i"
done
for _ in $(seq 100); do
  count=$("$CLI_BIN" -m "$WEIR_JM" taskmanagers --json 2>/dev/null | grep -c '"tm_id"' || true)
  [ "$count" -ge "$n" ] && break
  sleep 0.1
done
"$CLI_BIN" -m "$WEIR_JM" taskmanagers
echo "web UI and REST API: http://$WEIR_REST/ (docs/rest-api.md)"
