#!/usr/bin/env python3
"""Nexmark benchmark: runs each query of examples/nexmark/ for a fixed number of events on a
local cluster (one task manager at parallelism 1, then two task managers at parallelism 2),
measures the CPU time of all task managers (utime + stime from /proc/<pid>/stat, before and
after the job), and prints events per second per core beside Flink's published figure (Flink
1.13, nexmark/nexmark's README) and the ratio. The sink is a blackhole (q10 keeps its
partitioned file sink, into a temp dir: writing files is that query). Baseline in the same
run: q0 (the source and a blackhole alone), as "vs q0".

  bench/nexmark.py [--events 10000000] [--queries q0,q1,...] [--configs 1x1,2x2] [--build build]

Everything runs on 127.0.0.1 and is stopped at the end. No assertions on figures: it prints
them, and whether each query met its target ratio.
"""
import argparse
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "nexmark"))
EXAMPLES = os.path.join(HERE, "..", "examples", "nexmark")

# Flink 1.13's events per second per core (nexmark/nexmark README, 8 cores x 3 task managers).
FLINK = {"q0": 155e3, "q1": 158e3, "q2": 175e3, "q3": 152e3, "q4": 34e3, "q5": 22e3,
         "q7": 12e3, "q8": 146e3, "q9": 14e3, "q11": 40e3, "q12": 76e3, "q13": 131e3,
         "q14": 161e3, "q15": 72e3, "q16": 19e3, "q17": 117e3, "q18": 54e3, "q19": 44e3,
         "q20": 19e3, "q21": 98e3, "q22": 130e3}
TARGET = {"q0": 5, "q1": 5, "q2": 5, "q14": 5, "q21": 5, "q22": 5, "q17": 3,
          "q5": 3, "q15": 3, "q16": 3, "q18": 3, "q19": 3, "q3": 5, "q7": 3, "q8": 5, "q20": 3,
          "q13": 5, "q4": 3, "q9": 3}
QUERIES = ["q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8", "q9", "q10", "q11", "q12", "q13",
           "q14", "q15", "q16", "q17", "q18", "q19", "q20", "q21", "q22"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of process `pid`, in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def run_config(a, tms, parallelism, reference):
    from harness import Cluster
    cluster = Cluster(taskmanagers=tms, slots=1)
    results = {}
    try:
        pids = [p.pid for name, p in cluster.procs.items() if name.startswith("tm-")]
        for q in a.queries:
            out = os.path.join(cluster.dir, f"out-{q}") if q == "q10" else None
            text = reference.job_for(os.path.join(EXAMPLES, q + ".yaml"), a.events, parallelism,
                                     out)
            job = cluster.write_job(f"{q}.yaml", text)
            time.sleep(0.5)  # let the cluster settle
            before = sum(cpu_seconds(p) for p in pids)
            t0 = time.time()
            r = cluster.cli("run", job, "--wait", "--timeout", "3000", timeout=3100)
            wall = time.time() - t0
            cpu = sum(cpu_seconds(p) for p in pids) - before
            if r.returncode != 0:
                print(f"{q}: failed: {r.stderr.strip()}", flush=True)
                continue
            results[q] = (cpu, wall)
            rate = a.events / cpu
            flink = FLINK.get(q)
            line = (f"{q:>4} {tms} TM p={parallelism}: {a.events} events, {cpu:7.2f} CPU s, "
                    f"{wall:6.2f} s wall, {rate / 1e3:8.0f} K events/s/core")
            if flink:
                line += f", Flink {flink / 1e3:.0f} K: x{rate / flink:.1f}"
                if q in TARGET:
                    line += f" (target x{TARGET[q]}: {'met' if rate / flink >= TARGET[q] else 'MISSED'})"
            print(line, flush=True)
            if out:
                shutil.rmtree(out, ignore_errors=True)
    finally:
        cluster.cleanup()
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--queries", default=",".join(QUERIES))
    ap.add_argument("--configs", default="1x1,2x2",
                    help="task managers x parallelism, comma-separated")
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    a = ap.parse_args()
    a.queries = a.queries.split(",")
    os.environ["WEIR_BUILD_DIR"] = os.path.abspath(a.build)
    import reference

    table = []
    for cfg in a.configs.split(","):
        tms, p = (int(x) for x in cfg.split("x"))
        for q, (cpu, wall) in run_config(a, tms, p, reference).items():
            table.append((q, tms, p, cpu, wall))
    print("\nquery  TMs  p   CPU s   wall s  K ev/s/core  Flink K  ratio  vs q0")
    base = {(t, p): a.events / cpu for q, t, p, cpu, _ in table if q == "q0"}
    for q, t, p, cpu, wall in table:
        rate = a.events / cpu
        flink = FLINK.get(q)
        ratio = f"x{rate / flink:5.1f}" if flink else "     -"
        vs = f"{rate / base[(t, p)]:5.2f}" if (t, p) in base else "    -"
        flink_k = f"{flink / 1e3:7.0f}" if flink else "      -"
        print(f"{q:>5} {t:4} {p:2} {cpu:7.2f} {wall:8.2f} {rate / 1e3:12.0f} {flink_k}  {ratio}  {vs}")


if __name__ == "__main__":
    main()
