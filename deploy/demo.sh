#!/usr/bin/env bash
# Installs dependencies (Debian packages only), builds Weir, and runs the seeds' pipeline on a
# local cluster: the DEVELOPMENT Kafka broker (librdkafka's mock cluster, in memory), a producer
# of sample JSON events (1 in 100 malformed), and examples/kafka-to-hive.yaml: Kafka -> parse ->
# exactly-once files in Hive-style partitions by event time, with _SUCCESS markers and a
# dirty-data directory. Everything keeps running afterwards so you can explore (kill a task
# manager, check the output); deploy/stop-cluster.sh stops it all.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"
source deploy/common.sh
if is_alive "$WEIR_RUN_DIR/jobmanager.pid" || is_alive "$WEIR_RUN_DIR/dev-broker.pid"; then
  echo "A cluster is already running; restarting it."
  deploy/stop-cluster.sh
fi
# The job manager resumes the jobs recorded in $WEIR_RUN_DIR/ha. The demo starts with none, so
# that an earlier run's job does not come back and write into the output cleared below.
if [ -n "$(ls -A "$WEIR_RUN_DIR/ha" 2>/dev/null)" ]; then
  rm -rf "$WEIR_RUN_DIR/ha.previous"
  mv "$WEIR_RUN_DIR/ha" "$WEIR_RUN_DIR/ha.previous"
  echo "The jobs recorded by earlier runs were moved to $WEIR_RUN_DIR/ha.previous."
fi
deploy/start-cluster.sh 2 --keep-alive
deploy/dev-broker.sh start --topic events:4
OUT=/tmp/weir-output/kafka-to-hive
DIRTY=/tmp/weir-output/kafka-to-hive-dirty
rm -rf "$OUT" "$DIRTY"
EVENTS=72000   # ten hours of event time, one event every 500 ms
echo
echo "Producing $EVENTS sample events (1 in 100 malformed) to topic 'events' at 20,000/s..."
build/deploy/dev_broker/weir-kafka-tool produce --bootstrap "$(cat "$WEIR_RUN_DIR/kafka.bootstrap")" \
  --topic events --count "$EVENTS" --events --bad-every 100 --rate 20000 2>/dev/null &
producer=$!
# The job file names the bootstrap file relative to the repository; make it absolute.
JOB_FILE="$WEIR_RUN_DIR/kafka-to-hive.yaml"
sed "s#bootstrap_file: run/kafka.bootstrap#bootstrap_file: $WEIR_RUN_DIR/kafka.bootstrap#" \
  examples/kafka-to-hive.yaml >"$JOB_FILE"
job=$(build/cli/weir run "$JOB_FILE")
echo "Submitted examples/kafka-to-hive.yaml as job $job"
wait "$producer"
echo "Waiting for the job to commit everything (checkpoints every second)..."
for _ in $(seq 90); do
  if python3 deploy/check-output.py "$OUT" "$DIRTY" --expect-ids "$EVENTS" --bad-every 100 >/dev/null 2>&1; then
    break
  fi
  sleep 1
done
sleep 2
echo
build/cli/weir status "$job" | sed -n '1,/^slots/p'
echo
echo "Partitions ($OUT):"
find "$OUT" -path "$OUT/.staging" -prune -o -type d -name 'app=app0' -print | sort | head -n 4
echo "  ..."
echo "A partition:"
ls -l "$OUT/dt=2026-11-22/hour=00/app=app0"
echo
python3 deploy/check-output.py "$OUT" "$DIRTY" --expect-ids "$EVENTS" --bad-every 100 || true
echo "A dirty record:"
find "$DIRTY" -path "$DIRTY/.staging" -prune -o -type f -print | head -n 1 | xargs head -n 1
cat <<EOM

The job keeps running: produce more, kill things, and check that nothing is lost or doubled:
  build/deploy/dev_broker/weir-kafka-tool produce --bootstrap \$(cat run/kafka.bootstrap) \\
      --topic events --count 72000 --start $EVENTS --events --bad-every 100 --rate 20000 &
  deploy/taskmanager.sh kill tm-2      # kill -9 a task manager (--keep-alive restarts it)
  build/cli/weir status $job           # restarts, checkpoints, read = committed + dirty
  deploy/check-output.py $OUT $DIRTY --expect-ids 144000 --bad-every 100
  build/cli/weir stop $job --savepoint # stop with a savepoint
  build/cli/weir run examples/count-by-key.yaml --wait   # another example: a keyed count
  deploy/stop-cluster.sh               # stops the cluster and the dev broker
EOM
