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
import glob
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import Cluster, wait_for  # noqa: E402

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
      fields: [{{name: k, expr: "id % {keys}"}}]
  - id: ids
    type: committing_file
    parallelism: 2
    config: {{path: {dir}/out/ids}}
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


def committed_rows(path):
    rows = []
    for f in glob.glob(os.path.join(path, "*")):
        if os.path.isfile(f):
            with open(f) as fh:
                rows.extend(json.loads(line) for line in fh if line.strip())
    return rows


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
        for i in range(kills):
            time.sleep(rng.uniform(0.3, 1.2))
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
