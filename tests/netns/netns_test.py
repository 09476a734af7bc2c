#!/usr/bin/env python3
"""Multi-host faults on one machine: a secure Weir cluster across network namespaces
(netns_cluster.py: the job manager on host jm, task managers tm-1..3 on hosts tm1..tm3, a shared
temp directory as the NFS mount) runs the chaos test's job (tests/chaos/chaos_test.py: datagen ->
exactly-once committing_file sinks, plain and after a keyed running count), while one scenario's
faults are injected. After each fault the job must run again (every subtask RUNNING); at the end
every id must be committed exactly once (0 lost, 0 duplicated) and the running counts exact.
Prints per fault the detection time (fault -> the job manager fails the attempt over) and the
recovery time (fault -> every subtask of the new attempt RUNNING), both from the start of the
fault, polled every 50 ms through the CLI; nothing is asserted about times.

  tests/netns/netns_test.py SCENARIO [--records N] [--rate R] [--json FILE]

Scenarios: smoke (one task manager kill, a short run), kills (task manager kill -9, job manager
kill -9 and restart), link (a task manager's link down for 2 s, then for 20 s), sigstop (a task
manager stopped for 10 s, then continued), partition (the job manager and one task manager cannot
reach each other for 15 s; the task managers still reach each other), bandwidth (tc tbf at
64 kbit/s on a task manager's link for 15 s; netem delay and loss where the kernel has netem).
Exits 77 (ctest: skipped) with the reason when namespaces cannot be made (not root, no ip)."""
import argparse
import json
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "chaos"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from chaos_test import JOB, KEYS, check_exactly_once  # noqa: E402
from harness import all_running, checkpoints, committed_rows, wait_for  # noqa: E402
from netns_cluster import Net, NetnsCluster, NetnsUnavailable  # noqa: E402

SKIP = 77
HEARTBEAT_TIMEOUT_S = 5  # the job manager's default (jobmanager.heartbeat_timeout)


class Scenario:
    def __init__(self, net, cluster, job_id):
        self.net, self.cluster, self.job_id = net, cluster, job_id
        self.rows = []

    def job(self):
        try:
            return self.cluster.job(self.job_id)
        except Exception:  # the job manager is down or not serving yet
            return None

    def running_with(self, victim):
        """A task manager running subtasks of the job (the victim of the next fault)."""
        j = wait_for(lambda: (lambda j: j if j and all_running(j) else None)(self.job()), 60,
                     "the job to run")
        on = sorted({s["tm_id"] for s in j["subtasks"]})
        return victim if victim in on else on[-1]

    def wait_checkpoint(self):
        """Waits for a checkpoint completed after now (the job makes progress)."""
        base = checkpoints(self.job() or {})
        wait_for(lambda: checkpoints(self.job() or {}) > base, 60, "a checkpoint to complete",
                 interval=0.1)

    def committed(self):
        return len(committed_rows(os.path.join(self.cluster.dir, "out", "ids")))

    def measure(self, name, inject, end=None, hold_s=0.0, expect_failover=True, note="",
                throughput=False):
        """Injects a fault, ends it after hold_s (end()), and times detection and recovery.
        throughput: also report the committed ids per second during the fault and before it."""
        self.wait_checkpoint()
        if throughput:
            c_before, t_before = self.committed(), time.time()
            time.sleep(hold_s)
            rate_before = (self.committed() - c_before) / (time.time() - t_before)
            c0 = self.committed()
        before = self.job()
        restarts0, attempt0 = int(before.get("restarts", 0)), int(before.get("attempt", 0))
        t0 = time.time()
        inject()
        detected = running_again = None
        cause = ""
        t_end = t0 + hold_s
        ended = end is None
        done = False
        deadline = t0 + hold_s + 120
        while time.time() < deadline:
            if not ended and time.time() >= t_end:
                if throughput:
                    note += (f" committed {rate_before:.0f} ids/s before, "
                             f"{(self.committed() - c0) / (time.time() - t0):.0f} ids/s during")
                end()
                ended = True
                t_end = time.time()
            j = self.job()
            if j is not None:
                moved = int(j.get("restarts", 0)) > restarts0 or int(j.get("attempt", 0)) > attempt0
                if moved and detected is None:
                    detected = time.time() - t0
                    cause = j.get("last_failure", "")
                if moved and running_again is None and all_running(j):
                    running_again = time.time() - t0
                # Done once the fault ended and the job runs: after a failover, or (none
                # expected) when none came within twice the heartbeat timeout after the end.
                if ended and all_running(j) and (
                        moved or (not expect_failover and time.time() - t_end > 2 * HEARTBEAT_TIMEOUT_S)):
                    done = True
                    if moved and running_again is None:
                        running_again = time.time() - t0
                    break
            time.sleep(0.05)
        if not ended:
            end()
        if not done:
            raise AssertionError(f"{name}: the job did not run again within 120 s: {self.job()}")
        after = self.job()
        row = {
            "fault": name,
            "held_s": hold_s,
            "detection_s": round(detected, 2) if detected is not None else None,
            "recovery_s": round(running_again, 2) if running_again is not None else None,
            "restarts": int(after.get("restarts", 0)) - restarts0,
            "cause": cause,
            "note": note,
        }
        print(f"[fault] {json.dumps(row)}", flush=True)
        self.rows.append(row)
        return row


def scenario_faults(name, sc, net, cluster):
    if name in ("smoke", "kills"):
        victim = sc.running_with("tm-2")

        def kill_tm():
            cluster.kill(victim)

        sc.measure(f"task manager {victim} kill -9", kill_tm,
                   note="restarted after the recovery")
        cluster.start_tm(victim)
        if name == "smoke":
            return

        def kill_jm():
            cluster.kill("jm")
            time.sleep(1.0)
            cluster.restart_jm()

        sc.measure("job manager kill -9, restarted after 1 s", kill_jm,
                   note="detection: the restarted job manager redeploys (new attempt)")
        return
    if name == "link":
        for secs in (2, 20):
            victim = sc.running_with("tm-3")
            sc.measure(f"{victim} link down {secs} s", lambda v=victim: net.link(cluster.host_of(v), False),
                       end=lambda v=victim: net.link(cluster.host_of(v), True), hold_s=secs,
                       expect_failover=secs > HEARTBEAT_TIMEOUT_S,
                       )
        return
    if name == "sigstop":
        victim = sc.running_with("tm-1")
        sc.measure(f"{victim} SIGSTOP 10 s", lambda: cluster.signal(victim, signal.SIGSTOP),
                   end=lambda: cluster.signal(victim, signal.SIGCONT), hold_s=10,
                   note="the job runs again on the other task managers while it is stopped")
        log = cluster.log(victim)
        assert "cancelling the tasks of" in log or "replaced this attempt" in log, \
            f"{victim} did not fence itself after SIGCONT:\n{log[-3000:]}"
        return
    if name == "partition":
        victim = sc.running_with("tm-2")
        host = cluster.host_of(victim)
        sc.measure(f"jm <-> {victim} partitioned 15 s (task managers still connected)",
                   lambda: net.partition("jm", host, True), end=lambda: net.partition("jm", host, False),
                   hold_s=15)
        log = cluster.log(victim)
        assert "fencing" in log, f"{victim} did not fence itself:\n{log[-3000:]}"
        wait_for(lambda: len(cluster.taskmanagers()) == 3, 30, f"{victim} to register again")
        return
    if name == "bandwidth":
        victim = sc.running_with("tm-3")
        host = cluster.host_of(victim)
        sc.measure(f"{victim} link at 64 kbit/s (tc tbf) for 15 s",
                   lambda: net.tbf(host, "64kbit"), end=lambda: net.tbf(host, None, on=False),
                   hold_s=15, expect_failover=False, throughput=True,
                   note="")
        ok, why = net.netem_available()
        if not ok:
            print(f"[fault] {json.dumps({'fault': 'netem delay 100ms and loss 5%', 'skipped': why})}",
                  flush=True)
            sc.rows.append({"fault": "netem delay and loss", "skipped": why})
            return
        sc.measure(f"{victim} netem delay 100ms loss 5% for 15 s",
                   lambda: net.netem(host, ["delay", "100ms", "loss", "5%"]),
                   end=lambda: net.netem(host, None, on=False), hold_s=15, expect_failover=False)
        return
    raise SystemExit(f"unknown scenario {name}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", choices=["smoke", "kills", "link", "sigstop", "partition", "bandwidth"])
    ap.add_argument("--records", type=int, default=None)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--json", help="append the fault rows (JSON lines) to this file")
    a = ap.parse_args()
    durations = {"smoke": 8, "kills": 25, "link": 40, "sigstop": 25, "partition": 30, "bandwidth": 60}
    records = a.records or a.rate * durations[a.scenario]
    try:
        net = Net(["jm", "tm1", "tm2", "tm3"])
    except NetnsUnavailable as e:
        print(f"SKIPPED: network namespaces unavailable: {e}")
        sys.exit(SKIP)
    cluster = None
    ok = False
    try:
        cluster = NetnsCluster(net)
        print(f"cluster: job manager {cluster.jm} ({net.ip['jm']}), task managers on "
              + ", ".join(f"{net.name(h)} ({net.ip[h]})" for h in net.hosts[1:]), flush=True)
        text = JOB.format(dir=cluster.dir, records=records, rate=a.rate, keys=KEYS, format="json")
        job_id = cluster.cli("run", cluster.write_job("chaos.yaml", text), check=True).stdout.strip()
        sc = Scenario(net, cluster, job_id)
        t_start = time.time()
        scenario_faults(a.scenario, sc, net, cluster)
        ids_dir = os.path.join(cluster.dir, "out", "ids")
        wait_for(lambda: len(committed_rows(ids_dir)) >= records, 300,
                 f"all {records} ids committed", interval=0.5)
        time.sleep(1.0)  # one more checkpoint: anything beyond would be a duplicate
        ids = [r["id"] for r in committed_rows(ids_dir)]
        lost = len(set(range(records)) - set(ids))
        dup = len(ids) - len(set(ids))
        for row in sc.rows:
            row.update({"lost": lost, "duplicated": dup})
        check_exactly_once(cluster.dir, records)
        info = cluster.job(job_id)
        print(f"netns {a.scenario}: {records} ids in {time.time() - t_start:.0f} s, "
              f"restarts {info.get('restarts')}, exactly once (lost {lost}, duplicated {dup})")
        print("| fault | detection | recovery | lost | duplicated | note |")
        print("|---|---|---|---|---|---|")
        for r in sc.rows:
            if "skipped" in r:
                print(f"| {r['fault']} | skipped: {r['skipped']} | | | | |")
                continue
            det = f"{r['detection_s']} s" if r["detection_s"] is not None else "no failover"
            rec = f"{r['recovery_s']} s" if r["recovery_s"] is not None else "-"
            print(f"| {r['fault']} | {det} | {rec} | {r['lost']} | {r['duplicated']} | {r['note']} "
                  f"{('(failover: ' + r['cause'][:160] + ')') if r['cause'] else ''} |")
        if a.json:
            with open(a.json, "a") as f:
                for r in sc.rows:
                    f.write(json.dumps({"scenario": a.scenario, **r}) + "\n")
        cluster.cli("cancel", job_id)
        ok = True
    finally:
        if cluster:
            cluster.cleanup(dump_logs=not ok)
        net.close()


if __name__ == "__main__":
    main()
