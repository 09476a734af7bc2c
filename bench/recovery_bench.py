#!/usr/bin/env python3
"""Recovery benchmark: kill -9 a task manager under a running checkpointed job, repeatedly, and
measure (a) kill -> the job manager noticing (the job leaves RUNNING), (b) kill -> every
subtask RUNNING again, (c) kill -> the first new committed output file of the exactly-once
sink. Prints medians. Everything runs on 127.0.0.1 and is stopped at the end.

  bench/recovery_bench.py [--kills 10] [--keys 1000] [--value-bytes 0] [--build build] [--secure]

--keys/--value-bytes size the keyed state (e.g. --keys 2000000 --value-bytes 400 for ~1 GB,
which takes minutes to build up on a small machine).
"""
import argparse
import glob
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--value-bytes", type=int, default=0)
    ap.add_argument("--rate", type=int, default=50000)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--secure", action="store_true",
                    help="mutual TLS and a bearer token (docs/security.md): the handshake cost")
    a = ap.parse_args()
    os.environ["WEIR_BUILD_DIR"] = os.path.abspath(a.build)
    from harness import Cluster, wait_for

    cluster = Cluster(taskmanagers=3, slots=2, jm_args=["--heartbeat-timeout-ms", "3000"],
                      secure=a.secure)
    try:
        pad = f", {{name: pad, expr: \"substr('{'x' * 1000}', 1, {a.value_bytes})\"}}" if a.value_bytes else ""
        job = f"""
name: recovery-bench
checkpointing: {{interval: 500ms, dir: {cluster.dir}/checkpoints}}
vertices:
  - {{id: gen, type: datagen, parallelism: 2, config: {{rows_per_second: {a.rate}, fields: [{{name: k, expr: "id % {a.keys}"}}{pad}]}}}}
  - {{id: agg, type: keyed_aggregate, parallelism: 2, config: {{key: [k], aggregations: [{{fn: count, as: n}}{', {fn: max, field: pad, as: p}' if a.value_bytes else ''}]}}}}
  - {{id: out, type: committing_file, parallelism: 2, config: {{path: {cluster.dir}/out}}}}
edges:
  - {{from: gen, to: agg, partition: hash, key: [k]}}
  - {{from: agg, to: out}}
"""
        job_id = cluster.cli("run", cluster.write_job("job.yaml", job), check=True).stdout.strip()
        all_running = lambda j: j["state"] == "RUNNING" and all(s["state"] == "RUNNING" for s in j["subtasks"])
        wait_for(lambda: all_running(cluster.job(job_id)), 30, "the job running")
        noticed, running, committed = [], [], []
        for i in range(a.kills):
            wait_for(lambda: int(cluster.job(job_id)["checkpoints"]["completed"]) >= 2 * (i + 1), 120,
                     "checkpoints")
            info = cluster.job(job_id)
            victim = sorted({s["tm_id"] for s in info["subtasks"]})[i % 2]
            restarts = int(info.get("restarts", 0))
            files_before = set(glob.glob(os.path.join(cluster.dir, "out", "*")))
            t0 = time.time()
            cluster.kill(victim)
            t_notice = t_running = t_commit = None
            while time.time() - t0 < 60 and None in (t_notice, t_running, t_commit):
                j = cluster.job(job_id)
                now = time.time()
                if t_notice is None and (j["state"] != "RUNNING" or int(j.get("restarts", 0)) > restarts):
                    t_notice = now
                if t_notice and t_running is None and int(j.get("restarts", 0)) > restarts and all_running(j):
                    t_running = now
                if t_running and t_commit is None and \
                        set(glob.glob(os.path.join(cluster.dir, "out", "*"))) - files_before:
                    # a file committed after the restart
                    t_commit = now
                time.sleep(0.005)
            noticed.append(t_notice - t0)
            running.append(t_running - t0)
            committed.append(t_commit - t0)
            print(f"kill {i + 1}: {victim}: noticed {noticed[-1] * 1000:.0f} ms, running {running[-1] * 1000:.0f} ms, "
                  f"first commit {committed[-1] * 1000:.0f} ms", flush=True)
            cluster.start_tm(victim)
            wait_for(lambda: len(cluster.taskmanagers()) == 3, 20, "the task manager back")
        med = lambda xs: statistics.median(xs) * 1000
        print(f"\nmedian over {a.kills} kills ({a.keys} keys): (a) noticed {med(noticed):.0f} ms, "
              f"(b) all running {med(running):.0f} ms, (c) first new commit {med(committed):.0f} ms "
              f"(checkpoint interval 500 ms, restart delay 100 ms)")
    finally:
        cluster.cleanup()


if __name__ == "__main__":
    main()
