#!/usr/bin/env python3
"""Chaos test: a real cluster runs an unbounded stateful job with exactly-once file sinks while
task managers (and, in another mode, the job manager) are killed with SIGKILL at random moments.
The source stops at a known count; then the committed output must hold every id exactly once,
and the keyed running counts must be exactly what the ids imply.

  tests/chaos/chaos_test.py [--kills N] [--mode tm|jm|both] [--records N] [--seed S]

Without arguments (and under ctest) it runs the fast mode: a few kills of each kind.
"""
import argparse
import collections
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import Cluster, committed_rows, rows_by_partition, wait_for  # noqa: E402

KEYS = 97

JOB = """
name: chaos
max_parallelism: 64
checkpointing: {{interval: 300ms, dir: {dir}/checkpoints, retained: 2}}
restart_strategy: {{type: fixed-delay, attempts: -1, delay: 100ms}}
vertices:
  - id: gen
    type: datagen
    parallelism: 2
    config:
      total: {records}
      hold: true
      rows_per_second: {rate}
      fields: [{{name: k, expr: "id % {keys}"}}, {{name: ts, expr: "id * 500"}}]
    watermarks: {{event_time_field: ts, interval: 20ms}}
  - id: ids
    type: committing_file
    parallelism: 2
    config:
      path: {dir}/out/ids
      partition: "dt={{ts:%Y-%m-%d}}/hour={{ts:%H}}"
  - id: agg
    type: keyed_aggregate
    parallelism: 2
    config:
      key: [k]
      aggregations: [{{fn: count, as: n}}, {{fn: sum, field: id, as: s}}]
  - id: counts
    type: committing_file
    parallelism: 2
    config: {{path: {dir}/out/counts}}
edges:
  - {{from: gen, to: ids, partition: rebalance}}
  - {{from: gen, to: agg, partition: hash, key: [k]}}
  - {{from: agg, to: counts}}
"""


PER_HOUR = 7200  # ids per hour of event time (ts = id * 500 ms)


def check_markers(path):
    """A partition marked successful holds every id of its hour (the marker never comes first).
    Returns the marked hours."""
    marked = set()
    for part, rows in rows_by_partition(path).items():
        if os.path.exists(os.path.join(path, part, "_SUCCESS")):
            hour = int(part.split("hour=")[1])
            assert len(rows) == PER_HOUR, f"{part} marked successful with {len(rows)} of {PER_HOUR} ids"
            marked.add(hour)
    return marked


def run(kills, mode, records, seed, rate):
    rng = random.Random(seed)
    import tempfile
    ha = tempfile.mkdtemp(prefix="weir-chaos-ha-")
    cluster = Cluster(taskmanagers=3, slots=2, jm_args=["--ha-dir", ha, "--heartbeat-timeout-ms", "3000"])
    ok = False
    try:
        text = JOB.format(dir=cluster.dir, records=records, rate=rate, keys=KEYS)
        job_id = cluster.cli("run", cluster.write_job("chaos.yaml", text), check=True).stdout.strip()
        wait_for(lambda: cluster.job(job_id)["state"] == "RUNNING", 20, "the job to run")
        log = []
        ids_dir = os.path.join(cluster.dir, "out", "ids")
        for i in range(kills):
            time.sleep(rng.uniform(0.3, 1.2))
            check_markers(ids_dir)
            kind = mode if mode != "both" else rng.choice(["tm", "tm", "jm"])
            if kind == "jm":
                cluster.kill("jm")
                time.sleep(rng.uniform(0.1, 0.5))
                cluster.restart_jm()
                log.append("killed the job manager")
            else:
                victim = rng.choice(sorted(n for n in cluster.procs if n.startswith("tm-")))
                cluster.kill(victim)
                time.sleep(rng.uniform(0.1, 0.6))
                cluster.start_tm(victim)
                log.append(f"killed {victim}")
        # The source holds after `records` ids; checkpoints then commit everything.
        wait_for(lambda: len(committed_rows(os.path.join(cluster.dir, "out", "ids"))) >= records,
                 180, f"all {records} ids committed", interval=0.5)
        time.sleep(1.0)  # one more checkpoint: anything beyond would be a duplicate
        info = cluster.job(job_id)
        ids = [r["id"] for r in committed_rows(os.path.join(cluster.dir, "out", "ids"))]
        dup = [i for i, c in collections.Counter(ids).items() if c > 1]
        missing = set(range(records)) - set(ids)
        assert not dup, f"{len(dup)} ids committed twice, e.g. {dup[:5]}"
        assert not missing, f"{len(missing)} ids missing, e.g. {sorted(missing)[:5]}"
        assert len(ids) == records, f"{len(ids)} rows for {records} ids"
        for part, rows in rows_by_partition(ids_dir).items():
            hour = int(part.split("hour=")[1])
            wrong = [r["id"] for r in rows if r["id"] // PER_HOUR != hour]
            assert not wrong, f"ids {wrong[:5]} in {part}"
        # Every hour that ended before the last watermark gets its marker, once complete.
        complete = set(range((records - 2) // PER_HOUR))
        wait_for(lambda: check_markers(ids_dir) >= complete, 30, f"success files for hours {sorted(complete)}")
        assert not os.path.exists(os.path.join(ids_dir, "_late")), "no id was late"
        counts = committed_rows(os.path.join(cluster.dir, "out", "counts"))
        by_key = collections.defaultdict(list)
        for r in counts:
            by_key[r["k"]].append((r["n"], r["s"]))
        assert len(counts) == records, f"{len(counts)} running-count rows for {records} ids"
        for k in range(KEYS):
            expected_ids = list(range(k, records, KEYS))
            ns = sorted(n for n, _ in by_key[k])
            assert ns == list(range(1, len(expected_ids) + 1)), \
                f"key {k}: running counts are not exactly 1..{len(expected_ids)}"
            final_sum = max(by_key[k])[1]
            assert final_sum == sum(expected_ids), f"key {k}: sum {final_sum} != {sum(expected_ids)}"
        print(f"chaos ({mode}, {kills} kills, {records} ids): exactly once. restarts={info['restarts']}; "
              + "; ".join(log))
        cluster.cli("cancel", job_id)
        ok = True
    finally:
        cluster.cleanup(dump_logs=not ok)
        import shutil
        shutil.rmtree(ha, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=0, help="kills per mode (0: the fast default)")
    ap.add_argument("--mode", choices=["tm", "jm", "both"], default=None)
    ap.add_argument("--records", type=int, default=60000)
    ap.add_argument("--rate", type=int, default=20000, help="records per second of the source")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    a = ap.parse_args()
    print(f"seed {a.seed}")
    if a.mode is None and a.kills == 0:
        run(3, "tm", a.records, a.seed, a.rate)
        run(2, "jm", a.records, a.seed + 1, a.rate)
    else:
        run(a.kills or 3, a.mode or "both", a.records, a.seed, a.rate)


if __name__ == "__main__":
    main()
