#!/usr/bin/env bash
# Starts a local cluster: one job manager and N task managers, logs and pid files under
# $WEIR_RUN_DIR (default ./run). Waits until every task manager has registered.
#   deploy/start-cluster.sh [N] [--keep-alive] [--secure]
# N defaults to 2. --keep-alive (or WEIR_KEEP_ALIVE=1) restarts a task manager that dies.
# --secure: mutual TLS and a bearer token, with development certificates (docs/security.md).
# The job manager records jobs in $WEIR_RUN_DIR/ha, so a restarted one resumes them.
# See deploy/common.sh for the environment.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
n=2
secure=0
for a in "$@"; do
  case "$a" in
    --keep-alive) export WEIR_KEEP_ALIVE=1 ;;
    --secure) secure=1 ;;
    [0-9]*) n="$a" ;;
    *) die "usage: $0 [N] [--keep-alive] [--secure]" ;;
  esac
done
check_binaries
mkdir -p "$WEIR_RUN_DIR/log"
if is_alive "$WEIR_RUN_DIR/jobmanager.pid"; then
  die "a job manager is already running (pid $(cat "$WEIR_RUN_DIR/jobmanager.pid")); deploy/stop-cluster.sh first"
fi
if [ "$secure" = 1 ]; then
  mkdir -p "$WEIR_SECURE_DIR"
  make_secure_configs
else
  rm -f "$WEIR_SECURE_DIR/enabled"
  JM_CONFIG="$WEIR_CONFIG" TM_CONFIG="$WEIR_CONFIG"
  unset WEIR_TLS_CA WEIR_TOKEN_FILE
fi
nohup "$JM_BIN" --config "$JM_CONFIG" --rpc-address "$WEIR_JM" --rest-address "$WEIR_REST" \
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
if [ "$secure" = 1 ]; then
  echo "secure cluster: mutual TLS, bearer token. For the CLI and curl in your shell:"
  echo "  export WEIR_TLS_CA=$WEIR_TLS_CA WEIR_TOKEN_FILE=$WEIR_TOKEN_FILE"
  echo "  curl -H \"Authorization: Bearer \$(cat $WEIR_TOKEN_FILE)\" http://$WEIR_REST/overview"
fi
