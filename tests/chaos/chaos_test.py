#!/usr/bin/env python3
"""Chaos test: a real cluster runs an unbounded stateful job with exactly-once file sinks while
task managers (and, in another mode, the job manager) are killed with SIGKILL at random moments.
The source stops at a known count; then the committed output must hold every id exactly once,
and the keyed running counts must be exactly what the ids imply.

  tests/chaos/chaos_test.py [--kills N] [--mode tm|jm|both] [--records N] [--seed S]
  tests/chaos/chaos_test.py --long [--records N] [--rate R] [--seed S]
  ... --format parquet: both sinks write Parquet (the checks read it with DuckDB)

Without arguments (and under ctest chaos.fast) it runs the fast mode: a few kills of each kind.
--long (ctest chaos.long, label slow) runs 100 task manager kills and 10 job manager kills,
interleaved at random, in one run (by default 400,000 ids at 4,000/s, so the source is still
producing during most of the kills), then the same exactly-once checks, and prints the figures:
kills, restarts, records, duration and the time to recover from the kills after which the job
recovered before the next kill.
"""
import argparse
import collections
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import (Cluster, all_running, committed_rows, marked_partitions,  # noqa: E402
                     partition_hour, rows_by_partition, wait_for)

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
      format: {format}
  - id: agg
    type: keyed_aggregate
    parallelism: 2
    config:
      key: [k]
      aggregations: [{{fn: count, as: n}}, {{fn: sum, field: id, as: s}}]
  - id: counts
    type: committing_file
    parallelism: 2
    config: {{path: {dir}/out/counts, format: {format}}}
edges:
  - {{from: gen, to: ids, partition: rebalance}}
  - {{from: gen, to: agg, partition: hash, key: [k]}}
  - {{from: agg, to: counts}}
"""


PER_HOUR = 7200  # ids per hour of event time (ts = id * 500 ms)


def check_markers(path):
    """A partition marked successful holds every id of its hour (the marker never comes first).
    Returns the marked hours (since the epoch)."""
    marked_parts = marked_partitions(path)  # before the rows: see marked_partitions
    rows = rows_by_partition(path)
    marked = set()
    for part in marked_parts:
        n = len(rows.get(part, []))
        assert n == PER_HOUR, f"{part} marked successful with {n} of {PER_HOUR} ids"
        marked.add(partition_hour(part))
    return marked


def check_exactly_once(base_dir, records):
    """The committed output of JOB under `base_dir` holds every id in [0, records) exactly once,
    each in its hour's partition, the success markers of every complete hour, and keyed running
    counts exactly 1..n per key with the right sums. Raises AssertionError naming the first
    difference (ids lost or duplicated, with examples). Call once all `records` are committed."""
    ids_dir = os.path.join(base_dir, "out", "ids")
    ids = [r["id"] for r in committed_rows(ids_dir)]
    dup = [i for i, c in collections.Counter(ids).items() if c > 1]
    missing = set(range(records)) - set(ids)
    assert not dup, f"{len(dup)} ids committed twice, e.g. {dup[:5]}"
    assert not missing, f"{len(missing)} ids missing, e.g. {sorted(missing)[:5]}"
    assert len(ids) == records, f"{len(ids)} rows for {records} ids"
    for part, rows in rows_by_partition(ids_dir).items():
        hour = partition_hour(part)
        wrong = [r["id"] for r in rows if r["id"] // PER_HOUR != hour]
        assert not wrong, f"ids {wrong[:5]} in {part}"
    # Every hour that ended before the last watermark gets its marker, once complete.
    complete = set(range((records - 2) // PER_HOUR))
    wait_for(lambda: check_markers(ids_dir) >= complete, 30, f"success files for hours {sorted(complete)}")
    assert not os.path.exists(os.path.join(ids_dir, "_late")), "no id was late"
    counts = committed_rows(os.path.join(base_dir, "out", "counts"))
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


def run(kills, mode, records, seed, rate, schedule=None, secure=False, fmt="json"):
    """`schedule` (long mode): the kinds of the kills in order ("tm"/"jm"), instead of `kills`
    and `mode`; the job's recovery is then also timed between kills, and the markers are
    checked every 10th kill (they are checked at every kill otherwise)."""
    rng = random.Random(seed)
    long_mode = schedule is not None
    if long_mode:
        kills, mode = len(schedule), "long"
    import shutil
    import tempfile
    ha = tempfile.mkdtemp(prefix="weir-chaos-ha-")
    # The task managers' default state dirs (TMPDIR/weir-<id>-<pid>) go into a temp dir of our
    # own: a TM killed with SIGKILL cannot remove its own.
    tm_tmp = tempfile.mkdtemp(prefix="weir-chaos-tmp-")
    tm_env = {"TMPDIR": tm_tmp}
    try:
        cluster = Cluster(taskmanagers=3, slots=2, jm_args=["--ha-dir", ha, "--heartbeat-timeout-ms", "3000"],
                          tm_env=tm_env, secure=secure)
    except BaseException:
        shutil.rmtree(ha, ignore_errors=True)
        shutil.rmtree(tm_tmp, ignore_errors=True)
        raise
    ok = False
    try:
        text = JOB.format(dir=cluster.dir, records=records, rate=rate, keys=KEYS, format=fmt)
        job_id = cluster.cli("run", cluster.write_job("chaos.yaml", text), check=True).stdout.strip()
        wait_for(lambda: cluster.job(job_id)["state"] == "RUNNING", 20, "the job to run")
        log = []
        ids_dir = os.path.join(cluster.dir, "out", "ids")
        t_start = time.time()
        pending = None  # long mode: (kind, kill time, restarts before) of the last kill, until recovered
        recovered, idle_tm_kills = [], 0

        def job_or_none():
            try:
                return cluster.job(job_id)
            except Exception:  # the job manager is down or still recovering
                return None

        def pause(seconds):
            """Sleeps; in long mode, meanwhile polls whether the job recovered from the last kill."""
            nonlocal pending
            end = time.time() + seconds
            while long_mode and pending and time.time() < end:
                kind, t_kill, restarts = pending
                j = job_or_none()
                if j and all_running(j) and (kind == "jm" or int(j.get("restarts", 0)) > restarts):
                    recovered.append(time.time() - t_kill)
                    pending = None
                else:
                    time.sleep(0.02)
            time.sleep(max(0.0, end - time.time()))

        for i in range(kills):
            pause(rng.uniform(0.3, 1.2))
            if not long_mode or i % 10 == 0:
                check_markers(ids_dir)
            if long_mode:
                kind = schedule[i]
            else:
                kind = mode if mode != "both" else rng.choice(["tm", "tm", "jm"])
            if kind == "jm":
                t_kill = time.time()
                cluster.kill("jm")
                time.sleep(rng.uniform(0.1, 0.5))
                cluster.restart_jm()
                log.append("killed the job manager")
                pending = ("jm", t_kill, 0)
            else:
                victim = rng.choice(sorted(n for n in cluster.procs if n.startswith("tm-")))
                j = job_or_none() if long_mode else None
                t_kill = time.time()
                cluster.kill(victim)
                if j is not None and all_running(j) and \
                        victim in {s.get("tm_id") for s in j.get("subtasks", [])}:
                    pending = ("tm", t_kill, int(j.get("restarts", 0)))
                elif long_mode:
                    if j is not None and all_running(j):
                        idle_tm_kills += 1  # it ran no subtask: no restart to wait for
                    pending = None  # not timed (idle victim, or the job was not running)
                time.sleep(rng.uniform(0.1, 0.6))
                cluster.start_tm(victim, env=tm_env)
                log.append(f"killed {victim}")
            if long_mode and (i + 1) % 10 == 0:
                print(f"[{time.time() - t_start:6.0f} s] {i + 1}/{kills} kills, "
                      f"{len(recovered)} recoveries timed", flush=True)
        t_kills_end = time.time()
        # The source holds after `records` ids; checkpoints then commit everything.
        wait_for(lambda: len(committed_rows(os.path.join(cluster.dir, "out", "ids"))) >= records,
                 max(180, 3 * records / rate), f"all {records} ids committed", interval=0.5)
        t_committed = time.time()
        time.sleep(1.0)  # one more checkpoint: anything beyond would be a duplicate
        info = cluster.job(job_id)
        check_exactly_once(cluster.dir, records)
        if long_mode:
            n_tm, n_jm = schedule.count("tm"), schedule.count("jm")
            rec = sorted(recovered)
            rec_text = (f"median {rec[len(rec) // 2] * 1000:.0f} ms, max {rec[-1] * 1000:.0f} ms"
                        if rec else "-")
            print(f"chaos long: {n_tm} task manager kills ({idle_tm_kills} of an idle one) and {n_jm} "
                  f"job manager kills in {t_kills_end - t_start:.0f} s; all {records} ids committed "
                  f"{t_committed - t_start:.0f} s after the start (source: {rate}/s, "
                  f"{records / rate:.0f} s without kills); restarts {info.get('restarts', 0)} "
                  f"(counted by the last job manager); exactly once.\n"
                  f"recovery (kill -> every subtask RUNNING, polled), for the {len(rec)} kills after "
                  f"which the job recovered before the next kill: {rec_text}")
        else:
            print(f"chaos ({mode}, {kills} kills, {records} ids): exactly once. restarts={info['restarts']}; "
                  + "; ".join(log))
        cluster.cli("cancel", job_id)
        ok = True
    finally:
        cluster.cleanup(dump_logs=not ok)
        shutil.rmtree(ha, ignore_errors=True)
        shutil.rmtree(tm_tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=0, help="kills per mode (0: the fast default)")
    ap.add_argument("--mode", choices=["tm", "jm", "both"], default=None)
    ap.add_argument("--long", action="store_true",
                    help="100 task manager kills and 10 job manager kills in one run")
    ap.add_argument("--tm-kills", type=int, default=100, help="with --long")
    ap.add_argument("--jm-kills", type=int, default=10, help="with --long")
    ap.add_argument("--records", type=int, default=None, help="default 60000 (--long: 400000)")
    ap.add_argument("--rate", type=int, default=None,
                    help="records per second of the source (default 20000; --long: 4000)")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--secure", action="store_true",
                    help="a secure cluster: mutual TLS, bearer token (docs/security.md)")
    ap.add_argument("--format", choices=["json", "parquet"], default="json",
                    help="the sinks' output format (parquet: read back with DuckDB)")
    a = ap.parse_args()
    print(f"seed {a.seed}")
    if a.long:
        if a.kills or a.mode:
            ap.error("--long takes --tm-kills/--jm-kills, not --kills/--mode")
        schedule = ["tm"] * a.tm_kills + ["jm"] * a.jm_kills
        random.Random(a.seed).shuffle(schedule)
        run(0, None, a.records or 400000, a.seed, a.rate or 4000, schedule=schedule, secure=a.secure,
            fmt=a.format)
        return
    a.records = a.records or 60000
    a.rate = a.rate or 20000
    if a.mode is None and a.kills == 0:
        run(3, "tm", a.records, a.seed, a.rate, secure=a.secure, fmt=a.format)
        run(2, "jm", a.records, a.seed + 1, a.rate, secure=a.secure, fmt=a.format)
    else:
        run(a.kills or 3, a.mode or "both", a.records, a.seed, a.rate, secure=a.secure, fmt=a.format)


if __name__ == "__main__":
    main()
