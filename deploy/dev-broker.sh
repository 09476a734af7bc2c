#!/usr/bin/env bash
# Starts or stops the DEVELOPMENT Kafka broker (weir-dev-broker: librdkafka's mock cluster, in
# memory, ~5 MiB per partition, no transactions; never for real data).
#   deploy/dev-broker.sh start [--brokers N] [--topic NAME:PARTITIONS]...
#   deploy/dev-broker.sh stop
#   deploy/dev-broker.sh status
# The bootstrap list goes to $WEIR_RUN_DIR/kafka.bootstrap (use it as a Kafka vertex's
# `bootstrap_file`), the control port to $WEIR_RUN_DIR/kafka.control, the log to
# $WEIR_RUN_DIR/log/dev-broker.log. Fault injection: `echo "broker-down 1" | nc 127.0.0.1 PORT`
# (commands: see docs/kafka.md).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
BROKER_BIN="$WEIR_BUILD_DIR/deploy/dev_broker/weir-dev-broker"
PID_FILE="$WEIR_RUN_DIR/dev-broker.pid"
BOOTSTRAP_FILE="$WEIR_RUN_DIR/kafka.bootstrap"
CONTROL_FILE="$WEIR_RUN_DIR/kafka.control"
cmd="${1:-}"
case "$cmd" in
  start)
    shift
    [ -x "$BROKER_BIN" ] || die "missing $BROKER_BIN; build first (see README)"
    is_alive "$PID_FILE" && die "the dev broker is already running (pid $(cat "$PID_FILE"))"
    mkdir -p "$WEIR_RUN_DIR/log"
    rm -f "$BOOTSTRAP_FILE" "$CONTROL_FILE"
    nohup "$BROKER_BIN" --bootstrap-file "$BOOTSTRAP_FILE" --control-file "$CONTROL_FILE" "$@" \
      >>"$WEIR_RUN_DIR/log/dev-broker.log" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
    for _ in $(seq 100); do
      [ -s "$BOOTSTRAP_FILE" ] && break
      is_alive "$PID_FILE" || die "the dev broker exited; see $WEIR_RUN_DIR/log/dev-broker.log"
      sleep 0.1
    done
    [ -s "$BOOTSTRAP_FILE" ] || die "the dev broker did not publish $BOOTSTRAP_FILE in 10 s"
    echo "started the DEVELOPMENT Kafka broker (pid $(cat "$PID_FILE")): bootstrap $(cat "$BOOTSTRAP_FILE")" \
         "(in $BOOTSTRAP_FILE), control port $(cat "$CONTROL_FILE"), log $WEIR_RUN_DIR/log/dev-broker.log"
    ;;
  stop)
    stop_pid "$PID_FILE" "dev broker"
    rm -f "$BOOTSTRAP_FILE" "$CONTROL_FILE"
    ;;
  status)
    if is_alive "$PID_FILE"; then
      echo "dev broker running (pid $(cat "$PID_FILE")): bootstrap $(cat "$BOOTSTRAP_FILE"), control port $(cat "$CONTROL_FILE")"
    else
      echo "dev broker not running"
      exit 1
    fi
    ;;
  *)
    echo "usage: $0 start [--brokers N] [--topic NAME:PARTITIONS]... | stop | status" >&2
    exit 2
    ;;
esac
