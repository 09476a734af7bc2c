#!/usr/bin/env bash
# Starts or stops one task manager of the local cluster.
#   deploy/taskmanager.sh start [ID] [SLOTS]   (ID default: tm-<n>, the next free number)
#   deploy/taskmanager.sh stop ID
#   deploy/taskmanager.sh kill ID              (kill -9: to watch failure handling)
# With WEIR_KEEP_ALIVE=1, `start` runs the task manager under deploy/supervise.sh, which
# starts it again whenever it dies (kill -9 included) until `stop`.
# With WEIR_TM_HOST (start-cluster.sh sets it on other hosts), the task manager listens on
# every interface and advertises that host name (--host), and dials the job manager at
# $WEIR_JM_HOST:$WEIR_JM_PORT.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cmd="${1:-}"
case "$cmd" in
  start)
    check_binaries
    mkdir -p "$WEIR_RUN_DIR/log" "$WEIR_RUN_DIR/tm"
    id="${2:-}"
    if [ -z "$id" ]; then
      n=1
      while is_alive "$WEIR_RUN_DIR/tm/tm-$n.pid"; do n=$((n + 1)); done
      id="tm-$n"
    fi
    is_alive "$WEIR_RUN_DIR/tm/$id.pid" && die "$id is already running (pid $(cat "$WEIR_RUN_DIR/tm/$id.pid"))"
    args=(--config "$TM_CONFIG" --id "$id" --jobmanager "$WEIR_JM")
    # Prometheus /metrics: tm-N on port WEIR_TM_METRICS_PORT_BASE+N (default 9250+N), other
    # ids on an ephemeral port (`weir taskmanagers --json` lists every one's address).
    case "$id" in
      tm-[0-9]*) args+=(--metrics-address "127.0.0.1:$(( ${WEIR_TM_METRICS_PORT_BASE:-9250} + ${id#tm-} ))") ;;
    esac
    [ -n "${3:-}" ] && args+=(--slots "$3")
    if [ -n "${WEIR_TM_HOST:-}" ]; then
      args+=(--host "$WEIR_TM_HOST" --rpc-bind 0.0.0.0:0 --data-bind 0.0.0.0:0)
    fi
    if [ "${WEIR_KEEP_ALIVE:-0}" = 1 ]; then
      nohup "$DEPLOY_DIR/supervise.sh" "$WEIR_RUN_DIR/tm/$id.pid" "$WEIR_RUN_DIR/log/$id.log" -- \
        "$TM_BIN" "${args[@]}" >/dev/null 2>&1 </dev/null &
      echo $! >"$WEIR_RUN_DIR/tm/$id.supervisor"
      for _ in $(seq 50); do [ -f "$WEIR_RUN_DIR/tm/$id.pid" ] && break; sleep 0.1; done
      echo "started task manager $id (pid $(cat "$WEIR_RUN_DIR/tm/$id.pid"), kept alive), log $WEIR_RUN_DIR/log/$id.log"
    else
      nohup "$TM_BIN" "${args[@]}" >>"$WEIR_RUN_DIR/log/$id.log" 2>&1 </dev/null &
      echo $! >"$WEIR_RUN_DIR/tm/$id.pid"
      echo "started task manager $id (pid $!), log $WEIR_RUN_DIR/log/$id.log"
    fi
    ;;
  stop)
    [ -n "${2:-}" ] || die "usage: $0 stop ID"
    # A supervisor first, so it does not start the task manager again.
    stop_pid "$WEIR_RUN_DIR/tm/$2.supervisor" "supervisor of $2"
    stop_pid "$WEIR_RUN_DIR/tm/$2.pid" "task manager $2"
    ;;
  kill)
    [ -n "${2:-}" ] || die "usage: $0 kill ID"
    is_alive "$WEIR_RUN_DIR/tm/$2.pid" || die "$2 is not running"
    kill -9 "$(cat "$WEIR_RUN_DIR/tm/$2.pid")"
    if is_alive "$WEIR_RUN_DIR/tm/$2.supervisor"; then
      echo "killed task manager $2 with SIGKILL; its supervisor starts it again"
    else
      rm -f "$WEIR_RUN_DIR/tm/$2.pid"
      echo "killed task manager $2 with SIGKILL"
    fi
    ;;
  *)
    echo "usage: $0 start [ID] [SLOTS] | stop ID | kill ID" >&2
    exit 2
    ;;
esac
