#!/usr/bin/env bash
# Stops every process of the local cluster started by start-cluster.sh / taskmanager.sh, and
# the development Kafka broker if dev-broker.sh started one.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
shopt -s nullglob
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
