#!/usr/bin/env python3
"""Soak benchmark: resource growth per checkpoint of the job manager and the task managers.

A real cluster (1 JM, --taskmanagers TMs x 1 slot, 127.0.0.1, ephemeral ports, a temp dir)
runs an unbounded job for --minutes:

  datagen (unbounded, --rate rows/s, k = id % --keys, ts = id ms)
    -> hash(k) -> keyed_aggregate (count, sum per k) -> committing_file   (counts)
    -> rebalance -> committing_file partitioned by event-time minute,
                    partition commit with _SUCCESS files                  (ids; --no-partitioned)

at parallelism 2 (one slot per TM, so with 2 TMs each runs one subtask of every vertex, also
after a restart), with RocksDB state, --checkpoint-interval checkpoints (default 100ms) and a
fixed-delay, unlimited restart strategy. Every --kill-every seconds one task manager (round robin) is
killed with SIGKILL and started again under the same name; the job must be RUNNING again.

Every --sample-every seconds it reads, for the JM and each TM, /proc/<pid>/status (VmRSS,
VmSize, Threads), the number of lines of /proc/<pid>/maps and of entries of /proc/<pid>/fd,
and the job's completed-checkpoint count (`weir status --json`).

Growth: for each lifetime (one pid during one attempt of the job: a restarted TM is a new pid,
and a restart of the job redeploys every task, which frees what the old tasks held in every
TM, so both start a new series), samples taken at least --warmup seconds after the start of
that lifetime are fitted by least squares against the completed-checkpoint count (growth per
checkpoint) and against time (growth per hour). A process with several lifetimes gets a
pooled slope (one common slope, one intercept per lifetime, over lifetimes with >= 3
samples); the worst single lifetime is printed too. Hours to a limit = (limit - last value) / growth per hour: mappings against
vm.max_map_count, fds against the process's soft RLIMIT_NOFILE, threads against
min(kernel.threads-max, kernel.pid_max), RSS against MemTotal, virtual size against the soft
RLIMIT_AS (or the 128 TiB user address space).

--assert-flat exits 1 when, after warm-up, a process grows per checkpoint by more than 0.01
mappings, fds or threads, or 1024 bytes of RSS (virtual size is reported, not asserted).

  bench/soak.py                                   # 10 minutes, a TM killed every 2 minutes
  bench/soak.py --minutes 2 --kill-every 0 --assert-flat --build build
  bench/soak.py --minutes 4 --kill-every 0 --json soak.json
"""
import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

METRICS = ["maps", "vsz", "rss", "threads", "fds"]
# Thresholds of --assert-flat, per checkpoint, in the metric's unit (rss and vsz in bytes).
FLAT = {"maps": 0.01, "fds": 0.01, "threads": 0.01, "rss": 1024.0}
UNIT = {"maps": "", "vsz": "B", "rss": "B", "threads": "", "fds": ""}


def job_yaml(d, a):
    partitioned = f"""
  - id: ids
    type: committing_file
    parallelism: 2
    config:
      path: {d}/out/ids
      partition: "dt={{ts:%Y-%m-%d}}/hour={{ts:%H}}/minute={{ts:%M}}"
      partition_commit: {{enabled: true, delay: 0, success_file: _SUCCESS}}""" if a.partitioned else ""
    partitioned_edge = "\n  - {from: gen, to: ids, partition: rebalance}" if a.partitioned else ""
    watermarks = "\n    watermarks: {event_time_field: ts, interval: 50ms}" if a.partitioned else ""
    timeout = f", timeout: {a.checkpoint_timeout}" if a.checkpoint_timeout else ""
    return f"""
name: soak
max_parallelism: 64
checkpointing: {{interval: {a.checkpoint_interval}, dir: {d}/checkpoints, retained: 1{timeout}}}
restart_strategy: {{type: fixed-delay, attempts: -1, delay: 100ms}}
vertices:
  - id: gen
    type: datagen
    parallelism: 2
    config:
      rows_per_second: {a.rate}
      fields: [{{name: k, expr: "id % {a.keys}"}}, {{name: ts, expr: "id"}}]{watermarks}
  - id: agg
    type: keyed_aggregate
    parallelism: 2
    config:
      key: [k]
      aggregations: [{{fn: count, as: n}}, {{fn: sum, field: id, as: s}}]
  - id: counts
    type: committing_file
    parallelism: 2
    config: {{path: {d}/out/counts}}{partitioned}
edges:
  - {{from: gen, to: agg, partition: hash, key: [k]}}
  - {{from: agg, to: counts}}{partitioned_edge}
"""


# ----------------------------------------------------------------------------- /proc sampling

def read_proc(pid):
    """{maps, vsz, rss, threads, fds} of `pid` (bytes for vsz/rss), or None if it is gone."""
    try:
        out = {}
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key == "VmRSS":
                    out["rss"] = int(val.split()[0]) * 1024
                elif key == "VmSize":
                    out["vsz"] = int(val.split()[0]) * 1024
                elif key == "Threads":
                    out["threads"] = int(val.split()[0])
                elif key == "State" and val.split()[0] == "Z":
                    return None
        with open(f"/proc/{pid}/maps") as f:
            out["maps"] = sum(1 for _ in f)
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
        return out if len(out) == 5 else None
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def read_int(path, default=None):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def limits(pid):
    """The limit each metric runs into, for `pid`."""
    soft = {}
    try:
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    soft["fds"] = line[26:].split()[0]
                elif line.startswith("Max address space"):
                    soft["vsz"] = line[26:].split()[0]
    except OSError:
        pass
    mem_total = None
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_total = int(line.split()[1]) * 1024
    out = {
        "maps": read_int("/proc/sys/vm/max_map_count", 65530),
        "threads": min(read_int("/proc/sys/kernel/threads-max", 1 << 30),
                       read_int("/proc/sys/kernel/pid_max", 1 << 30)),
        "rss": mem_total,
        "fds": int(soft["fds"]) if soft.get("fds", "unlimited").isdigit() else None,
        "vsz": int(soft["vsz"]) if soft.get("vsz", "unlimited").isdigit() else 1 << 47,
    }
    return out


def dir_usage(path):
    files = size = 0
    for root, _, names in os.walk(path):
        for n in names:
            try:
                size += os.lstat(os.path.join(root, n)).st_size
                files += 1
            except OSError:
                pass
    return files, size


# ----------------------------------------------------------------------------- fitting

def pooled_slope(series, xkey, ykey):
    """Least-squares slope of y against x with one intercept per series (series: lists of
    samples). None when no series has >= 3 samples spread over x."""
    num = den = 0.0
    for s in series:
        if len(s) < 3:
            continue
        xs = [p[xkey] for p in s]
        ys = [p[ykey] for p in s]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        num += sum((x - mx) * (y - my) for x, y in zip(xs, ys))
        den += sum((x - mx) ** 2 for x in xs)
    return num / den if den > 0 else None


def fmt(v, unit=""):
    if v is None:
        return "-"
    if unit == "B":
        a = abs(v)
        for u, m in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
            if a >= m:
                return f"{v / m:.2f} {u}"
        return f"{int(round(v))} B"
    if abs(v) >= 100 or abs(v) < 1e-9:
        return f"{int(round(v))}"
    return f"{v:.3g}" if abs(v) >= 0.001 else f"{v:.1e}"


def hours_text(h):
    if h is None:
        return "never"
    if h > 1e6:
        return "> 1e6"
    return f"{h:.1f}" if h < 100 else f"{h:.0f}"


def analyse(samples, names, warmup):
    """Per process name and metric: pooled slopes per checkpoint and per hour, the worst series,
    the last value and the hours to the limit."""
    result = {}
    for name in names:
        # Series: the samples of one pid during one attempt of the job (a restart of the job
        # cancels and redeploys every task, which frees what the old tasks held, also in the task
        # managers that survived). A series starts at its first sample (the first one at the
        # job's start).
        by_pid = {}
        order = []
        for s in samples:
            p = s["procs"].get(name)
            if p is None:
                continue
            # The job manager keeps every job's state in the same structures whatever the
            # attempt: one series per pid.
            key = (p["pid"], 0 if name == "jm" else s.get("restarts", 0))
            if key not in by_pid:
                by_pid[key] = {"start": s["t"] if order else 0.0, "points": []}
                order.append(key)
            by_pid[key]["points"].append(dict(p, t=s["t"], ckpt=s["ckpt"]))
        series = []
        for pid in order:
            start = by_pid[pid]["start"]
            pts = [q for q in by_pid[pid]["points"] if q["t"] - start >= warmup]
            series.append({"pid": f"{pid[0]}/attempt {pid[1]}", "points": pts, "all": by_pid[pid]["points"]})
        if not order:
            continue
        last_pid = order[-1]
        last = by_pid[last_pid]["points"][-1]
        lim = last.get("limits", {})
        per = {}
        for m in METRICS:
            pts_lists = [s["points"] for s in series]
            per_ckpt = pooled_slope(pts_lists, "ckpt", m)
            per_s = pooled_slope(pts_lists, "t", m)
            per_h = per_s * 3600 if per_s is not None else None
            worst = None
            for s in series:
                v = pooled_slope([s["points"]], "ckpt", m)
                if v is not None and (worst is None or v > worst[0]):
                    worst = (v, s["pid"], len(s["points"]))
            limit = lim.get(m)
            hours = None
            if per_h is not None and per_h > 0 and limit:
                hours = max(0.0, (limit - last[m]) / per_h)
            per[m] = {"per_checkpoint": per_ckpt, "per_hour": per_h, "limit": limit,
                      "last": last[m], "hours_to_limit": hours,
                      "worst_series": None if worst is None else
                      {"per_checkpoint": worst[0], "pid": worst[1], "samples": worst[2]}}
        result[name] = {"lifetimes": [{"pid": s["pid"], "samples": len(s["all"]),
                                       "fitted_samples": len(s["points"])} for s in series],
                        "metrics": per}
    return result


def print_table(analysis):
    print()
    print(f"{'process':<8} {'metric':<8} {'per checkpoint':>15} {'per hour':>12} {'last':>11} "
          f"{'limit':>10} {'h to limit':>10}  worst lifetime/ckpt")
    for name, r in analysis.items():
        for m in METRICS:
            v = r["metrics"][m]
            w = v["worst_series"]
            wtext = f"{fmt(w['per_checkpoint'], UNIT[m])} (pid {w['pid']}, {w['samples']} samples)" \
                if w and len(r["lifetimes"]) > 1 else ""
            print(f"{name:<8} {m:<8} {fmt(v['per_checkpoint'], UNIT[m]):>15} "
                  f"{fmt(v['per_hour'], UNIT[m]):>12} {fmt(v['last'], UNIT[m]):>11} "
                  f"{fmt(v['limit'], UNIT[m]):>10} {hours_text(v['hours_to_limit']):>10}  {wtext}")
        lt = ", ".join(f"pid {x['pid']}: {x['fitted_samples']}/{x['samples']} fitted"
                       for x in r["lifetimes"])
        print(f"{'':<8} lifetimes: {lt}")


def check_flat(analysis):
    bad = []
    for name, r in analysis.items():
        for m, limit in FLAT.items():
            v = r["metrics"][m]["per_checkpoint"]
            if v is None:
                bad.append(f"{name} {m}: too few samples after the warm-up to fit a slope")
            elif v > limit:
                bad.append(f"{name} {m}: grows by {fmt(v, UNIT[m])} per checkpoint after the "
                           f"warm-up (limit {fmt(limit, UNIT[m])})")
    return bad


# ----------------------------------------------------------------------------- the run

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--kill-every", type=float, default=120, help="seconds; 0 = no kills")
    ap.add_argument("--sample-every", type=float, default=10, help="seconds")
    ap.add_argument("--checkpoint-interval", default="100ms")
    ap.add_argument("--checkpoint-timeout", default=None,
                    help="the job's checkpoint timeout (default: the job default, 60s)")
    ap.add_argument("--count", choices=["completed", "attempted"], default="completed",
                    help="the checkpoints growth is per: completed ones (default), or attempted "
                         "ones (completed + failed + in progress: for a build whose checkpoints do "
                         "not complete, with a short --checkpoint-timeout)")
    ap.add_argument("--rate", type=int, default=20000, help="rows per second of the source")
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--block-cache-mb", type=int, default=None,
                    help="each RocksDB state DB's block cache (the TMs' default: 64). It fills "
                         "with blocks of compacted-away files too, so RSS ramps up to it: a "
                         "small cache shortens the warm-up")
    ap.add_argument("--taskmanagers", type=int, default=2)
    ap.add_argument("--no-partitioned", dest="partitioned", action="store_false",
                    help="without the event-time partitioned sink")
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds of each process lifetime left out of the fits "
                         "(default: 20%% of the run, at most 60)")
    ap.add_argument("--build", default=os.environ.get("WEIR_BUILD_DIR", os.path.join(HERE, "..", "build")))
    ap.add_argument("--json", help="write the samples and the summary to this file")
    ap.add_argument("--assert-flat", action="store_true",
                    help="exit 1 if, after warm-up, mappings/fds/threads grow by > 0.01 or RSS by "
                         "> 1024 bytes per checkpoint")
    a = ap.parse_args()
    duration = a.minutes * 60
    warmup = a.warmup if a.warmup is not None else min(60.0, 0.2 * duration)
    os.environ["WEIR_BUILD_DIR"] = os.path.abspath(a.build)
    from harness import Cluster, all_running, wait_for

    print(f"soak: build {os.path.abspath(a.build)}, {a.minutes:g} min, {a.taskmanagers} TMs, "
          f"{a.rate} rows/s, {a.keys} keys, block cache "
          f"{a.block_cache_mb if a.block_cache_mb is not None else 'default'} MiB, checkpoints every {a.checkpoint_interval}, "
          f"checkpoint timeout {a.checkpoint_timeout or 'default'}, growth per {a.count} checkpoint, "
          f"kill every {a.kill_every:g} s, sample every {a.sample_every:g} s, warm-up {warmup:g} s, "
          f"partitioned sink {'on' if a.partitioned else 'off'}; load average "
          f"{os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs", flush=True)

    # SIGTERM/SIGINT (e.g. a ctest timeout) must still stop the cluster: turn them into an
    # exception so the finally below runs.
    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    # The task managers' default state dirs (TMPDIR/weir-<id>-<pid>) go into a temp dir of our
    # own: a TM killed with SIGKILL cannot remove its own.
    tm_tmp = tempfile.mkdtemp(prefix="weir-soak-tmp-")
    tm_env = {"TMPDIR": tm_tmp}
    try:
        tm_args = [] if a.block_cache_mb is None else ["--rocksdb-block-cache-mb", str(a.block_cache_mb)]
        cluster = Cluster(taskmanagers=a.taskmanagers, slots=1, jm_args=["--heartbeat-timeout-ms", "3000"],
                          tm_args=tm_args, tm_env=tm_env)
    except BaseException:
        shutil.rmtree(tm_tmp, ignore_errors=True)
        raise
    samples, kills = [], []
    failed = None
    job_id = None
    tm_names = [f"tm-{i + 1}" for i in range(a.taskmanagers)]
    names = ["jm", *tm_names]
    try:
        job_id = cluster.cli("run", cluster.write_job("soak.yaml", job_yaml(cluster.dir, a)),
                             check=True).stdout.strip()

        def status():
            j = cluster.job(job_id)
            cp = j.get("checkpoints", {})
            done, failed_ = int(cp.get("completed", 0)), int(cp.get("failed", 0))
            x = done if a.count == "completed" else done + failed_ + int(cp.get("in_progress", cp.get("inProgress", 0)))
            return j, x, failed_, int(j.get("restarts", 0))

        wait_for(lambda: all_running(cluster.job(job_id)), 60, "the job running", interval=0.2)
        t0 = time.time()
        print(f"job {job_id} running; cluster dir {cluster.dir}", flush=True)
        lims = {}
        next_sample = 0.0
        next_kill = a.kill_every if a.kill_every > 0 else float("inf")
        victim_i = 0
        while True:
            now = time.time() - t0
            if now >= duration and next_sample > duration:
                break
            if next_kill <= next_sample and next_kill < duration:
                time.sleep(max(0.0, next_kill - (time.time() - t0)))
                victim = tm_names[victim_i % len(tm_names)]
                victim_i += 1
                _, _, _, restarts = status()
                tk = time.time()
                cluster.kill(victim)
                cluster.start_tm(victim, env=tm_env)
                j = wait_for(lambda: (lambda j: j if int(j.get("restarts", 0)) > restarts and all_running(j)
                                      else None)(cluster.job(job_id)), 120, "the job running again", interval=0.05)
                rec = time.time() - tk
                kills.append({"t": tk - t0, "tm": victim, "recovered_s": rec})
                print(f"[{tk - t0:7.1f}s] killed {victim} (kill -9) and started it again; job RUNNING "
                      f"again after {rec * 1000:.0f} ms (restarts {j.get('restarts', 0)})", flush=True)
                next_kill += a.kill_every
                continue
            time.sleep(max(0.0, next_sample - (time.time() - t0)))
            j, ckpt, ckpt_failed, restarts = status()
            ts = time.time() - t0
            procs = {}
            for name in names:
                p = cluster.procs.get(name)
                if p is None or p.poll() is not None:
                    continue
                v = read_proc(p.pid)
                if v is None:
                    continue
                if p.pid not in lims:
                    lims[p.pid] = limits(p.pid)
                v["pid"] = p.pid
                v["limits"] = lims[p.pid]
                procs[name] = v
            files, size = dir_usage(os.path.join(cluster.dir, "checkpoints"))
            samples.append({"t": ts, "ckpt": ckpt, "ckpt_failed": ckpt_failed, "restarts": restarts,
                            "state": j["state"], "checkpoint_dir_files": files,
                            "checkpoint_dir_bytes": size, "procs": procs})
            line = " ".join(f"{n}[maps {v['maps']} vsz {fmt(v['vsz'], 'B')} rss {fmt(v['rss'], 'B')} "
                            f"thr {v['threads']} fds {v['fds']}]" for n, v in procs.items())
            print(f"[{ts:7.1f}s] ckpt {ckpt} {a.count} (failed {ckpt_failed}) {j['state']} {line}", flush=True)
            next_sample += a.sample_every
            if j["state"] in ("FAILED", "CANCELED", "FINISHED"):
                raise AssertionError(f"the job ended: {j['state']}")

        analysis = analyse(samples, names, warmup)
        fitted = [s for s in samples if s["t"] >= warmup]
        ck0, ck1 = samples[0], samples[-1]
        rate = (ck1["ckpt"] - ck0["ckpt"]) / max(1e-9, ck1["t"] - ck0["t"])
        print(f"\n{ck1['ckpt']} checkpoints {a.count} ({rate:.2f}/s, {ck1['ckpt_failed']} failed), "
              f"{ck1['restarts']} restarts, {len(kills)} TM kills, {len(samples)} samples "
              f"({len(fitted)} after the warm-up of {warmup:g} s); load average now "
              f"{os.getloadavg()[0]:.2f}")
        if kills:
            recs = sorted(k["recovered_s"] for k in kills)
            print(f"recovery after a TM kill (kill -> every subtask RUNNING): median "
                  f"{recs[len(recs) // 2] * 1000:.0f} ms, max {recs[-1] * 1000:.0f} ms")
        if len(fitted) >= 2:
            f0, f1 = fitted[0], fitted[-1]
            dck = max(1, f1["ckpt"] - f0["ckpt"])
            print(f"checkpoint dir: {f1['checkpoint_dir_files']} files, {fmt(f1['checkpoint_dir_bytes'], 'B')} "
                  f"(after warm-up: {(f1['checkpoint_dir_files'] - f0['checkpoint_dir_files']) / dck:+.3g} files, "
                  f"{fmt((f1['checkpoint_dir_bytes'] - f0['checkpoint_dir_bytes']) / dck, 'B')} per checkpoint)")
        print_table(analysis)
        bad = check_flat(analysis) if a.assert_flat else []
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"config": {k: v for k, v in vars(a).items()}, "warmup": warmup,
                           "job_id": job_id, "kills": kills, "samples": samples,
                           "summary": analysis, "checkpoints_per_s": rate,
                           "assert_flat_failures": bad}, f, indent=1)
        if bad:
            failed = "resource growth after the warm-up:\n  " + "\n  ".join(bad)
        elif a.assert_flat:
            print("\nflat: no growth per checkpoint above 0.01 mappings/fds/threads or 1 KiB RSS")
    except BaseException:
        failed = failed or "error"
        raise
    finally:
        try:
            if job_id:
                cluster.cli("cancel", job_id, timeout=20)
        except Exception:
            pass
        cluster.cleanup(dump_logs=(failed == "error"))
        shutil.rmtree(tm_tmp, ignore_errors=True)
    if failed:
        print(f"\nFAIL: {failed}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
