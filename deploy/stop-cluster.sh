#!/usr/bin/env bash
# Stops every process of the cluster started by start-cluster.sh / taskmanager.sh: the task
# managers on other hosts (over $WEIR_SSH, those start-cluster.sh recorded), the local ones,
# the job manager, and the development Kafka broker if dev-broker.sh started one.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
shopt -s nullglob
if [ -s "$WEIR_RUN_DIR/remote-workers" ]; then
  q() { printf '%q' "$1"; }
  while read -r host id; do
    [ -z "$host" ] && continue
    cmd="cd $(q "$WEIR_HOME") && WEIR_RUN_DIR=$(q "$WEIR_RUN_DIR/hosts/$host") WEIR_SECURE_DIR=$(q "$WEIR_SECURE_DIR")"
    cmd+=" WEIR_BUILD_DIR=$(q "$WEIR_BUILD_DIR") deploy/taskmanager.sh stop $(q "$id")"
    # shellcheck disable=SC2086
    $WEIR_SSH "$host" "$cmd" </dev/null || echo "weir: could not stop $id on $host over ssh" >&2
  done <"$WEIR_RUN_DIR/remote-workers"
  rm -f "$WEIR_RUN_DIR/remote-workers"
fi
for f in "$WEIR_RUN_DIR"/tm/*.supervisor; do
  stop_pid "$f" "supervisor of $(basename "$f" .supervisor)"
done
for f in "$WEIR_RUN_DIR"/tm/*.pid; do
  stop_pid "$f" "task manager $(basename "$f" .pid)"
done
stop_pid "$WEIR_RUN_DIR/jobmanager.pid" "job manager"
if [ -f "$WEIR_RUN_DIR/dev-broker.pid" ]; then
  "$DEPLOY_DIR/dev-broker.sh" stop
fi
